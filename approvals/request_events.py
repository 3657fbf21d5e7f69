"""What an approval request's changes tell the outside: its domain events and the wake-up of
the callers long-polling it (`GET /api/approvals/requests/{id}?wait=`).

Events (`governance.events`, so the event feed and webhooks carry them) are recorded in the
transaction of the change, like every domain event: `approval_request.created` by
`approvals.requests.request_create`, `approval_request.decided` by `Answer.settle`, and
`approval_request.expired` / `approval_request.cancelled` by `gate_events_of_requests`, an event
subscriber that follows the `gate.expired` / `gate.superseded` events of request gates. They are
thin (ids, action, decision, the approval page); the request itself says the rest.

The wake-up is a Redis publish on the closed gate's channel after commit, without a query, so
deciding costs no extra read; without Redis (the embedded default) the waiters notice by
polling. It never raises into the committed change: failures are logged.
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
from approvals.events import EXPIRED as GATE_EXPIRED
from approvals.events import SUPERSEDED as GATE_SUPERSEDED
from approvals.models import ApprovalRequest, Gate
from automations.api.run_json import approval_url
from automations.ids import APPROVAL_REQUESTS_AUTOMATION_ID
from governance.events import EventDraft, events_record

logger = logging.getLogger(__name__)

CREATED = "approval_request.created"
DECIDED = "approval_request.decided"
EXPIRED = "approval_request.expired"
CANCELLED = "approval_request.cancelled"
REQUEST_EVENT_TYPES = {
    CREATED: "an agent asked for approval; the request waits for a human",
    DECIDED: "a human approved (maybe with edits), sent back or cancelled the request",
    EXPIRED: "the request expired before a decision (fails closed: nothing approved)",
    CANCELLED: "the request was cancelled without a decision (its run was stopped)",
}
# Redis socket timeouts of the wake-up channel (a silent Redis must not hold a decision).
REDIS_TIMEOUT_S = 2.0


def request_event(event_type: str, request: ApprovalRequest, **extra: Any) -> None:
    """Record one event of `request` in the caller's transaction."""
    events_record([_draft(event_type, request, **extra)])


def _draft(event_type: str, request: ApprovalRequest, **extra: Any) -> EventDraft:
    data = {
        "request_id": request.pk,
        "action": request.action,
        "gate_id": request.gate_id,
        "run_id": request.run.run_id,
        "approval_url": approval_url(request.gate_id),
        **extra,
    }
    return EventDraft(request.workspace_id, event_type, data)


# The gate events that settle a request without a decision, and the request event of each.
_CLOSING = {GATE_EXPIRED: EXPIRED, GATE_SUPERSEDED: CANCELLED}


def gate_events_of_requests(events: list) -> None:
    """Event subscriber: a request gate expired or superseded (the run was cancelled) records
    the request's own event in the same transaction (one query, only for request gates)."""
    closing = {
        event.data["gate_id"]: _CLOSING[event.event_type]
        for event in events
        if event.event_type in _CLOSING
        and event.data.get("automation_id") == APPROVAL_REQUESTS_AUTOMATION_ID
    }
    if not closing:
        return
    requests = ApprovalRequest.objects.filter(gate_id__in=closing).select_related("run")
    events_record([_draft(closing[r.gate_id], r) for r in requests])


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
def on_gate_closed(*, gate_id: str, outcome: str, **kwargs: Any) -> None:
    """Wake the long polls of the gate (any gate: the publish costs no query to tell)."""
    client = _client()
    if client is not None:
        try:
            client.publish(_channel(gate_id), outcome)
        except redis.RedisError:
            logger.warning("cannot publish the closing of gate %s; waiters poll", gate_id)
        finally:
            client.close()
