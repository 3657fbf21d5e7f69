"""Call sites for chat notifications about gates (cards arrive with the chat issue).

Each function runs after the commit that opened, reminded or escalated a gate, so a notifier
always reads committed state. They enqueue nothing yet: the chat issue makes them post cards.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def gate_opened(gate_id: str) -> None:
    """A gate opened: post its approval card to every chat connection of the workspace."""
    logger.info("gate opened gate_id=%s (no chat delivery configured)", gate_id)


def gate_reminder(gate_id: str) -> None:
    """An open gate is due a reminder (the expiry sweep): re-post its approval card."""
    logger.info("gate reminder gate_id=%s (no chat delivery configured)", gate_id)


def gate_escalated(gate_id: str, usernames: list[str]) -> None:
    """An expired gate was escalated to `usernames` (now granted review): notify them."""
    logger.info("gate escalated gate_id=%s to=%s (no chat delivery configured)", gate_id, usernames)


def gate_decided(gate_id: str) -> None:
    """A gate was decided (committed): update its approval cards to show the decision."""
    logger.info("gate decided gate_id=%s (no chat delivery configured)", gate_id)
