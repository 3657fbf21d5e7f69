"""The value a card's button carries back: which decision, on which gate opening.

Every platform gets the same string (`fg:<decision>:<gate id>`) as Slack's action value, Discord's
`custom_id` and Telegram's `callback_data` (64 bytes at most, hence the short prefix). Because the
gate id names one opening, a stale card can never decide a later round of the same node.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "fg"
DECISIONS = frozenset({"approve", "rework", "cancel"})
MAX_LENGTH = 64  # Telegram's callback_data limit, the smallest of the three platforms


@dataclass(frozen=True)
class CardAction:
    decision: str
    gate_id: str

    def encode(self) -> str:
        value = f"{PREFIX}:{self.decision}:{self.gate_id}"
        if len(value.encode()) > MAX_LENGTH:
            raise ValueError(f"action value longer than {MAX_LENGTH} bytes: {value!r}")
        return value


def decode_action(value: str) -> CardAction | None:
    """The action a button value names, or None for anything we did not put on a card."""
    prefix, _, rest = value.partition(":")
    decision, _, gate_id = rest.partition(":")
    if prefix != PREFIX or decision not in DECISIONS or not gate_id:
        return None
    return CardAction(decision=decision, gate_id=gate_id)
