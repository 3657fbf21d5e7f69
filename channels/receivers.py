"""Receivers of the approval gates' domain events (`approvals.signals`): every change of a
gate reaches its chat cards. Connected in `ChannelsConfig.ready()`.

The signals are sent after the gate change committed, so the card tasks read committed state.
Nothing is enqueued for a workspace without an active chat connection. A broker that cannot take
the task must not turn a committed change into an error for its caller: the failure is logged,
and the beat sweep (`channels.sync_overdue_cards`) posts the cards whose task was lost.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from approvals import signals
from approvals.models import Gate
from channels import delivery, tasks

logger = logging.getLogger(__name__)


def _enqueue(task, gate_id: str, *args) -> None:
    try:
        if delivery.gate_has_connections(gate_id):
            task.delay(gate_id, *args)
    except Exception:  # the gate change is committed; the card delivery is what we lose
        logger.exception("could not enqueue %s for gate %s", task.name, gate_id)


@receiver(signals.gate_opened, sender=Gate, dispatch_uid="channels.gate_opened")
def post_cards_on_open(*, gate_id: str, **kwargs) -> None:
    """A gate opened: post its approval card to every chat connection of the workspace."""
    _enqueue(tasks.post_cards, gate_id, delivery.CARD)


@receiver(signals.gate_reminded, sender=Gate, dispatch_uid="channels.gate_reminded")
def post_cards_on_reminder(*, gate_id: str, reminder: int, **kwargs) -> None:
    """An open gate is due a reminder: re-post its approval card."""
    _enqueue(tasks.post_cards, gate_id, delivery.reminder_purpose(reminder))


@receiver(signals.gate_escalated, sender=Gate, dispatch_uid="channels.gate_escalated")
def post_cards_on_escalation(*, gate_id: str, **kwargs) -> None:
    """An expired gate was escalated (to the reviewers in `Gate.escalated_to`, who may now
    decide this opening): re-post its card naming them, so they see it and can decide."""
    _enqueue(tasks.post_cards, gate_id, delivery.ESCALATION)


@receiver(signals.gate_progress, sender=Gate, dispatch_uid="channels.gate_progress")
def update_cards_on_progress(*, gate_id: str, **kwargs) -> None:
    """An approval counted towards the gate's quorum without settling it: its open cards show
    the new count and who approved (their buttons stay)."""
    _enqueue(tasks.update_cards, gate_id)


@receiver(signals.gate_closed, sender=Gate, dispatch_uid="channels.gate_closed")
def update_cards_on_close(*, gate_id: str, **kwargs) -> None:
    """A gate closed (decided on any surface, expired or superseded): update its cards."""
    _enqueue(tasks.update_cards, gate_id)
