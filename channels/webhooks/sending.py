"""Sending webhook deliveries: created with their event, sent after commit, in order, signed,
retried with backoff, logged.

- **Created with the event.** `deliveries_for_events` is a subscriber of `governance.events`
  (registered in `channels.apps`): in the transaction that records events, it adds one
  `WebhookDelivery` per event and active endpoint of the workspace subscribed to its type. A
  change that rolls back therefore leaves no delivery, and a committed one cannot lose its.
- **Sent after commit, in order.** After the commit, one `channels.send_webhooks` task per
  endpoint touched is published (`automations.scheduling.publish`: a broker that is down is
  logged, never an error for the change). The task *drains* its endpoint (`endpoint_drain`):
  it takes the endpoint's earliest unfinished delivery, sends it, and goes on with the next
  only once that one is delivered or failed for good; while it waits for a retry, the later
  deliveries wait too. A delivery is claimed (`claimed_until`, a lease longer than one POST
  can take) before it is sent, so two tasks draining the same endpoint never send it twice at
  once; no database lock is held during the POST.
- **Signed** per the Standard Webhooks specification (the `standardwebhooks` package):
  `webhook-id` (the event's id, the same on every retry and redelivery), `webhook-timestamp`
  (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with
  the endpoint's secret; the body is `{"type", "timestamp", "data"}`.
- **Egress** as `http` nodes: the allowlist and address checks run again for every attempt,
  and the POST goes to the address that was checked (`automations.nodes.http.post_pinned`). A
  refusal fails the delivery for good (configuration, not a transient error).
- **Retries**: any answer but 2xx, a timeout or a connection error is retried after
  `FLOWGATE_WEBHOOK_RETRY_BACKOFF_S` doubling per attempt (capped by `..._MAX_S`), up to
  `FLOWGATE_WEBHOOK_MAX_ATTEMPTS` attempts; then the delivery is `failed`. Every attempt is a
  `WebhookAttempt` row (time, status code or error, latency).
- **Lost messages**: the beat task `channels.sweep_webhooks` re-publishes the drain of every
  endpoint with a delivery overdue by more than `OVERDUE_GRACE_S` (the publish or the retry
  message was lost, a worker died holding a claim).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from automations.nodes.base import NodeFailure
from automations.nodes.http import HostAllowlist, allowed_addresses, post_pinned
from automations.scheduling import publish
from channels.models import (
    UNFINISHED_DELIVERY,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from governance.events import event_message
from governance.models import WorkspaceEvent

logger = logging.getLogger(__name__)

SEND_WEBHOOKS = "channels.send_webhooks"
USER_AGENT = "Flowgate-webhooks/1"
# Deliveries one drain task sends before handing on to a fresh message (other endpoints' turn).
DRAIN_BATCH = 100
# How long past due an unfinished delivery must be before the sweep re-publishes its endpoint.
OVERDUE_GRACE_S = 60


def lease_seconds() -> float:
    return settings.FLOWGATE_WEBHOOK_TIMEOUT_S + 30


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (doubling, capped)."""
    base = settings.FLOWGATE_WEBHOOK_RETRY_BACKOFF_S
    return min(settings.FLOWGATE_WEBHOOK_RETRY_BACKOFF_MAX_S, base * 2 ** max(0, attempts - 1))


# --- creating ----------------------------------------------------------------------------------


def deliveries_for_events(events: list[WorkspaceEvent]) -> None:
    """Subscriber of `governance.events` (inside the recording transaction): one delivery per
    event and active endpoint subscribed to its type; their endpoints drain after commit."""
    endpoints = list(
        WebhookEndpoint.objects.filter(
            workspace_id__in={e.workspace_id for e in events}, is_active=True
        ).values_list("pk", "workspace_id", "event_types")
    )
    if not endpoints:
        return
    now = timezone.now()
    rows = [
        WebhookDelivery(endpoint_id=pk, event_id=event.pk, next_attempt_at=now)
        for event in events
        for pk, workspace_id, types in endpoints
        if workspace_id == event.workspace_id and event.event_type in types
    ]
    if rows:
        WebhookDelivery.objects.bulk_create(rows)
        send_after_commit(sorted({row.endpoint_id for row in rows}))


def send_now(endpoint_pk: int, *, countdown: float = 0) -> bool:
    """Publish the drain of one endpoint (logs instead of raising; the sweep re-sends)."""
    return publish(SEND_WEBHOOKS, [endpoint_pk], countdown=countdown or None)


def send_after_commit(endpoint_pks: list[int]) -> None:
    for endpoint_pk in endpoint_pks:
        transaction.on_commit(partial(send_now, endpoint_pk), robust=True)


# --- sending -----------------------------------------------------------------------------------


def endpoint_drain(endpoint_pk: int) -> float | None:
    """Send the endpoint's unfinished deliveries in order (see the module docstring). Returns
    the seconds after which to drain again (a retry is due then, or the batch ran out), or None
    when there is nothing left for this task to do."""
    for _ in range(DRAIN_BATCH):
        head = (
            WebhookDelivery.objects.filter(endpoint_id=endpoint_pk, status__in=UNFINISHED_DELIVERY)
            .select_related("endpoint", "event")
            .order_by("pk")
            .first()
        )
        if head is None or not head.endpoint.is_active:
            return None  # an inactive endpoint keeps its deliveries until it is reactivated
        now = timezone.now()
        if head.next_attempt_at > now:
            return (head.next_attempt_at - now).total_seconds()
        if not _claim(head.pk, now):
            return None  # another task is sending it, and drains on after it
        try:
            _attempt(head)
        finally:
            WebhookDelivery.objects.filter(pk=head.pk).update(claimed_until=None)
        if head.status == DeliveryStatus.RETRYING:
            return backoff(head.attempts)
    return 0.0


def _claim(delivery_pk: int, now: datetime) -> bool:
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_pk, status__in=UNFINISHED_DELIVERY)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=lease_seconds()))
    )


def message_body(event: WorkspaceEvent) -> str:
    """The JSON body of an event's webhook: `{"type", "timestamp", "data"}`."""
    return json.dumps(event_message(event), separators=(",", ":"))


def signed_headers(*, secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body),
    }


def _attempt(delivery: WebhookDelivery) -> None:
    """POST the delivery once, log the attempt and move the delivery on (in memory too)."""
    endpoint, event = delivery.endpoint, delivery.event
    body = message_body(event)
    at = datetime.now(UTC)
    status_code: int | None = None
    started = time.monotonic()
    try:
        target = httpx.URL(endpoint.url)
        addresses = allowed_addresses(target, HostAllowlist.from_settings())
        status_code, _ = post_pinned(
            target,
            addresses,
            content=body.encode(),
            headers=signed_headers(
                secret=endpoint.secret, message_id=event.event_id, body=body, at=at
            ),
            timeout=settings.FLOWGATE_WEBHOOK_TIMEOUT_S,
            shown=str(target.copy_with(username=None, password=None)),
        )
        ok = 200 <= status_code < 300
        error, retryable = ("" if ok else f"HTTP {status_code}"), not ok
    except NodeFailure as failure:
        ok, error, retryable = False, failure.reason, failure.retryable
    except httpx.InvalidURL as exc:
        ok, error, retryable = False, f"invalid URL: {exc}", False
    latency_ms = int((time.monotonic() - started) * 1000)
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery,
        attempted_at=now,
        status_code=status_code,
        latency_ms=latency_ms,
        error=error[:2000],
    )
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_latency_ms = latency_ms
    delivery.last_error = error[:2000]
    if ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
    elif retryable and delivery.attempts < settings.FLOWGATE_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
    else:
        delivery.status = DeliveryStatus.FAILED
        logger.warning(
            "webhook delivery %s to endpoint %s failed for good after %d attempts: %s",
            delivery.pk,
            endpoint.pk,
            delivery.attempts,
            error,
        )
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "last_status_code",
            "last_latency_ms",
            "last_error",
            "delivered_at",
            "next_attempt_at",
            "updated_at",
        ]
    )


def endpoints_overdue(*, now: datetime) -> list[int]:
    """Endpoints with a delivery overdue by more than `OVERDUE_GRACE_S` and not claimed: their
    drain message was lost (the beat sweep publishes it again)."""
    overdue = now - timedelta(seconds=OVERDUE_GRACE_S)
    return list(
        WebhookDelivery.objects.filter(
            status__in=UNFINISHED_DELIVERY,
            next_attempt_at__lt=overdue,
            endpoint__is_active=True,
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("endpoint_id", flat=True)
        .distinct()
        .order_by("endpoint_id")
    )
