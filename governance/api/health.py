"""Liveness and readiness probes (no authentication; they reveal nothing but up/down)."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from kombu import Connection

from config.celery import app as celery_app


def healthz(request):
    return JsonResponse({"ok": True})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    try:
        with Connection(
            celery_app.conf.broker_url,
            connect_timeout=2,
            transport_options=celery_app.conf.broker_transport_options,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def readyz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(v is None for v in checks.values())
    body = {
        "ok": ok,
        "checks": {name: ("ok" if err is None else err) for name, err in checks.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)
