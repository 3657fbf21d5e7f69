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
