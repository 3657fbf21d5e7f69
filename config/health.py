"""Liveness and readiness probes (no authentication; they reveal nothing but up/down).

A failing check answers "unavailable" and nothing else: exception text can name hosts, ports,
users or paths. The exception itself goes to the log.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from kombu import Connection

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


CHECKS = {"database": _check_database, "broker": _check_broker}


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
