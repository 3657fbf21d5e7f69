"""Liveness and readiness probes (no authentication; they reveal nothing but up/down).

Readiness covers the database, the broker and beat: without beat no gate expires and no stale
run is reaped, so a deployment whose stale-run sweep has not completed within
`FLOWGATE_READY_SWEEP_MAX_AGE_S` (three sweep intervals by default) is not ready. A new
deployment is therefore not ready until beat's first sweep, one interval after beat starts.

A failing check answers "unavailable" and nothing else: exception text can name hosts, ports,
users or paths. The exception itself goes to the log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from kombu import Connection

from automations import scheduling
from automations.runs.sweeps import last_sweep_completed_at
from config.celery import app as celery_app

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


def healthz(request):
    return JsonResponse({"ok": True})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    with Connection(
        celery_app.conf.broker_url,
        connect_timeout=2,
        transport_options=celery_app.conf.broker_transport_options,
    ) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


class BeatSilent(Exception):
    """The stale-run sweep has not completed recently: beat (or the sweep) is not working."""


def _check_beat() -> None:
    completed_at = last_sweep_completed_at(scheduling.SWEEP_RUNS)
    max_age = timedelta(seconds=settings.FLOWGATE_READY_SWEEP_MAX_AGE_S)
    if completed_at is None or timezone.now() - completed_at > max_age:
        raise BeatSilent(f"last completed sweep: {completed_at or 'never'}")


CHECKS = {"database": _check_database, "broker": _check_broker, "beat": _check_beat}


def _status(name: str) -> str:
    try:
        CHECKS[name]()
    except Exception:
        logger.warning("readiness check %s failed", name, exc_info=True)
        return UNAVAILABLE
    return OK


def readyz(request):
    checks = {name: _status(name) for name in CHECKS}
    ok = all(value == OK for value in checks.values())
    return JsonResponse({"ok": ok, "checks": checks}, status=200 if ok else 503)
