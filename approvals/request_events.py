"""What happens after an approval request changes: its domain event, and the wake-up of the
callers long-polling it (`GET /api/approvals/requests/{id}?wait=`).

`emit` is the ONE place request events leave the app (see `EVENT FEED` below); it is called
after commit by `approvals.requests.request_create` (created), by `Answer.settle` through
`on_commit` (decided) and by the `gate_closed` receiver here (expired, or cancelled when an
operator stopped the run). The wake-up is a Redis publish on the closed gate's channel,
without a query, so deciding costs no extra read; without Redis (the embedded default) the
waiters notice by polling. Neither ever raises into the committed change: failures are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import redis
from django.conf import settings
from django.dispatch import receiver

from approvals import signals
from approvals.models import ApprovalRequest, Gate

logger = logging.getLogger(__name__)

CREATED = "approval_request.created"
DECIDED = "approval_request.decided"
EXPIRED = "approval_request.expired"
CANCELLED = "approval_request.cancelled"
# Redis socket timeouts of the wake-up channel (a silent Redis must not hold a decision).
REDIS_TIMEOUT_S = 2.0


def emit(event: str, *, request_id: str, **details: Any) -> None:
    """Announce a committed change of an approval request.

    EVENT FEED: the event feed / webhooks (issue 18, "the events feed and webhooks carry its
    events") hook in here, and only here: record `event` for `request_id` with `details`.
    """
    logger.info("%s %s", event, request_id, extra={"approval_request": request_id, **details})


def _channel(gate_id: str) -> str:
    return f"flowgate:gate-closed:{gate_id}"


def _client() -> redis.Redis | None:
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )


class Wakeup:
    """A subscription to one gate's closing; `wait(seconds)` returns early when it closes."""

    def __init__(self, pubsub) -> None:
        self._pubsub = pubsub

    def wait(self, seconds: float) -> None:
        if self._pubsub is None:
            time.sleep(seconds)
            return
        try:
            self._pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        except redis.RedisError:
            logger.warning("approval request wake-up channel failed; polling instead")
            self._pubsub = None


@contextmanager
def gate_closing(gate_id: str) -> Iterator[Wakeup]:
    """Subscribe to `gate_id`'s closing for the duration of a long poll (before the caller's
    first read, so a decision committed in between is not missed)."""
    client = _client()
    pubsub = None
    if client is not None:
        try:
            pubsub = client.pubsub()
            pubsub.subscribe(_channel(gate_id))
        except redis.RedisError:
            logger.warning("cannot subscribe to approval request wake-ups; polling instead")
            pubsub = None
    try:
        yield Wakeup(pubsub)
    finally:
        if pubsub is not None:
            with suppress(redis.RedisError):
                pubsub.close()
        if client is not None:
            client.close()


@receiver(signals.gate_closed, sender=Gate, dispatch_uid="approvals.request_events.gate_closed")
def on_gate_closed(*, gate_id: str, outcome: str, decision: str | None, **kwargs: Any) -> None:
    """Wake the long polls of the gate; announce a request's expiry or cancellation (a decision
    announces itself, `Answer.settle`)."""
    client = _client()
    if client is not None:
        try:
            client.publish(_channel(gate_id), outcome)
        except redis.RedisError:
            logger.warning("cannot publish the closing of gate %s; waiters poll", gate_id)
        finally:
            client.close()
    if outcome == signals.DECIDED:
        return
    request_id = ApprovalRequest.objects.filter(gate_id=gate_id).values_list("pk", flat=True)
    for pk in request_id:
        emit(EXPIRED if outcome == signals.EXPIRED else CANCELLED, request_id=pk)
