"""`/readyz` (config/health.py) fails while beat has not completed a sweep recently and passes
once a real worker has run the beat's stale-run sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.models import SweepMark
from automations.scheduling import SWEEP_RUNS, publish
from tests.support.wait import wait_for


@pytest.mark.django_db
def test_readyz_fails_when_no_sweep_ever_completed(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "beat": "unavailable"}


@pytest.mark.django_db
def test_readyz_fails_when_beat_stopped_a_few_intervals_ago(client, settings):
    settings.FLOWGATE_READY_SWEEP_MAX_AGE_S = 90
    SweepMark.objects.create(name=SWEEP_RUNS, completed_at=timezone.now() - timedelta(seconds=91))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "checks": {"database": "ok", "broker": "ok", "beat": "unavailable"},
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_passes_after_the_worker_ran_a_sweep(client, celery_worker):
    assert client.get("/readyz").status_code == 503
    assert publish(SWEEP_RUNS, [])  # what beat sends every FLOWGATE_SWEEP_INTERVAL_S
    wait_for(lambda: SweepMark.objects.filter(name=SWEEP_RUNS).exists(), timeout=20)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "ok": True,
        "checks": {"database": "ok", "broker": "ok", "beat": "ok"},
    }
