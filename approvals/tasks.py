"""Celery tasks of approvals: thin and idempotent (the sweep re-checks every gate it acts on)."""

from __future__ import annotations

from celery import shared_task

from approvals import expiry


@shared_task(name="approvals.sweep_gates", ignore_result=True)
def sweep_gates() -> None:
    """Beat: reminders, escalation and expiry of open gates (SPEC §6.5)."""
    expiry.sweep_gates()
