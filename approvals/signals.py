"""Domain events of approval gates, sent after the commit of the change they announce.

Declared here, sent by `approvals` (`services`, `decisions`, `expiry`), received by higher apps
in their `AppConfig.ready()` (`channels.receivers` updates chat cards). Every signal is sent
with `sender=Gate` and the keyword `gate_id`; docs/signals.md lists them with their arguments
and receivers.

`send_after_commit` registers the send with `transaction.on_commit(..., robust=True)` and uses
`send_robust`, so a failing receiver is logged and never raised into the request or task whose
change is already committed, and never stops the other receivers.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from approvals.models import Gate

logger = logging.getLogger(__name__)

gate_opened = Signal()
"""A gate opened (a new round): `gate_id`."""

gate_reminded = Signal()
"""An open gate is due a reminder (the expiry sweep): `gate_id`, `reminder` (its number)."""

gate_escalated = Signal()
"""An expired gate was escalated to `Gate.escalated_to`, who may now decide it: `gate_id`."""

gate_progress = Signal()
"""An approval was recorded on a quorum gate without completing it (the gate stays open):
`gate_id`; `Gate.quorum` holds the progress."""

gate_closed = Signal()
"""A gate closed: `gate_id`, `outcome` (`decided`, `expired` or `superseded`) and `decision`
(`approve`, `rework`, `cancel` when decided, else None)."""

DECIDED = "decided"
EXPIRED = "expired"
SUPERSEDED = "superseded"


def send_after_commit(signal: Signal, **kwargs: Any) -> None:
    """Send `signal` with `sender=Gate` once the current transaction commits."""
    transaction.on_commit(partial(_send, signal, kwargs), robust=True)


def _send(signal: Signal, kwargs: dict[str, Any]) -> None:
    for receiver, response in signal.send_robust(sender=Gate, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "receiver %r of a gate signal failed for %s",
                receiver,
                kwargs,
                exc_info=(type(response), response, response.__traceback__),
            )
