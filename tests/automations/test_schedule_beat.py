"""A schedule fired by Celery beat itself (issue 17 item 5, Show): two real workers, each with
beat embedded (`-B`, as `./flowgate run` starts it) ticking every second, race for a schedule
firing every two seconds. Every fire time gets exactly one run, which the workers execute."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from automations.models import Run, RunStatus, Schedule
from tests.factories import AUTOMATIONS_URL as URL
from tests.factories import agent_node, create_automation
from tests.support.wait import wait_for

BEAT_ENV = {"FLOWGATE_SCHEDULE_TICK_S": "1", "FLOWGATE_SWEEP_INTERVAL_S": "3600"}


@pytest.mark.django_db(transaction=True)
def test_two_beats_start_exactly_one_run_per_fire_time(operator, settings, celery_worker_factory):
    settings.FLOWGATE_SCHEDULE_MIN_INTERVAL_S = 1
    create_automation(
        operator,
        automation_id="pulse",
        flow={"nodes": [agent_node("draft")]},
        agents=[
            {
                "agent_id": "agent-a",
                "template_id": "t",
                "model_policy": {"provider": "echo", "model": "echo-1"},
            }
        ],
    )
    response = operator.client().post(
        f"{URL}/pulse/schedules",
        {"cron": "*/2 * * * * *", "inputs": {"topic": "tick"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    schedule_id = response.json()["schedule_id"]
    workers = [
        celery_worker_factory(concurrency=1, env=BEAT_ENV, beat=True),
        celery_worker_factory(concurrency=1, env=BEAT_ENV, beat=True),
    ]
    wait_for(lambda: Run.objects.filter(trigger_id=schedule_id).count() >= 3, timeout=30)
    operator.client().patch(
        f"{URL}/pulse/schedules/{schedule_id}", {"enabled": False}, format="json"
    )
    time.sleep(2)  # a fire claimed just before the disable commits finishes
    runs = list(Run.objects.filter(trigger_id=schedule_id).order_by("scheduled_for"))
    fire_times = [run.scheduled_for for run in runs]
    assert len(fire_times) == len(set(fire_times)) >= 3
    assert all(t.second % 2 == 0 and t.microsecond == 0 for t in fire_times)
    assert {run.trigger_type for run in runs} == {"schedule"}
    assert {tuple(run.inputs.items()) for run in runs} == {(("topic", "tick"),)}
    assert Schedule.objects.get().next_fire_at is None
    wait_for(
        lambda: (
            set(Run.objects.filter(trigger_id=schedule_id).values_list("status", flat=True))
            == {RunStatus.COMPLETED}
        ),
        timeout=30,
    )
    logs = "".join(worker.log() for worker in workers)
    assert "Scheduler: Sending due task fire-schedules" in logs
    assert "already fired" not in logs  # the row claims kept them apart, not the constraint
    assert datetime.now(UTC) > fire_times[-1]
