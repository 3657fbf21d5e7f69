"""Celery tasks of approvals: thin and idempotent (the sweep re-checks every gate it acts on)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals import delegation, expiry


@shared_task(name="approvals.sweep_gates", ignore_result=True)
def sweep_gates() -> None:
    """Beat: reminders, escalation and expiry of open gates (SPEC §6.5)."""
    expiry.sweep_gates()


@shared_task(name="approvals.expire_delegations", ignore_result=True)
def expire_delegations() -> None:
    """Beat: audit the end of every delegation whose period is over (once each)."""
    delegation.delegations_expire(now=timezone.now())
