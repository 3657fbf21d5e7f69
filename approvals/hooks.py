"""Call sites for chat notifications about gates: each enqueues the card delivery of
`channels.tasks` (SPEC §8).

Each function runs after the commit that opened, reminded, escalated or closed a gate, so the
tasks read committed state. Nothing is enqueued for a workspace without an active chat
connection. A broker that cannot take the task must not turn a committed decision into an
error for its caller (these run inside `on_commit` callbacks): the failure is logged instead.
"""

from __future__ import annotations

import logging

from approvals.models import Gate

logger = logging.getLogger(__name__)


def _enqueue(task, gate_id: str, *args) -> None:
    from channels import delivery

    try:
        if delivery.gate_has_connections(gate_id):
            task.delay(gate_id, *args)
    except Exception:  # the gate change is committed; the card delivery is what we lose
        logger.exception("could not enqueue %s for gate %s", task.name, gate_id)


def gate_opened(gate_id: str) -> None:
    """A gate opened: post its approval card to every chat connection of the workspace."""
    from channels import delivery, tasks

    _enqueue(tasks.post_cards, gate_id, delivery.CARD)


def gate_reminder(gate_id: str) -> None:
    """An open gate is due a reminder (the expiry sweep): re-post its approval card."""
    from channels import delivery, tasks

    count = Gate.objects.filter(pk=gate_id).values_list("reminder_count", flat=True).first()
    _enqueue(tasks.post_cards, gate_id, delivery.reminder_purpose(count or 0))


def gate_escalated(gate_id: str) -> None:
    """An expired gate was escalated (to the reviewers in `Gate.escalated_to`, who may now
    decide this opening): re-post its card naming them, so they see it and can decide."""
    from channels import delivery, tasks

    _enqueue(tasks.post_cards, gate_id, delivery.ESCALATION)


def gate_decided(gate_id: str) -> None:
    """A gate was closed (decided on any surface, or expired): update its approval cards."""
    from channels import tasks

    _enqueue(tasks.update_cards, gate_id)
