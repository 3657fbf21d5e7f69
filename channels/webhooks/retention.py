"""Retention of outbound webhook deliveries: beat (`channels.forget_webhook_deliveries`)
deletes the finished ones older than `FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S`, with their
attempts, in bounded batches (`governance.retention`).

Only a delivery done for good goes: `delivered` or `failed`, and not under a sender's lease
(`claimed_until`, set while a POST is in flight), and only once both its creation and its
last change (`updated_at`, the save that finished it) are past the retention: a delivery that
waited long (its endpoint was inactive) still stays a full retention after it finished. A
pending or retrying one stays whatever its age: it is still on its way.

Deliveries refer to their events, which `governance` prunes on its own schedule: `event_hold`
(registered in `channels.apps`) keeps every event a delivery still refers to, so an event goes
only after its last delivery did, and the event retention never breaks a pending delivery.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from channels.models import FINISHED_DELIVERY, WebhookDelivery
from governance.retention import MAX_BATCHES, forget_in_batches


def event_hold() -> Exists:
    """Event hold (`governance.events.register_event_hold`): an event with a delivery stays."""
    return Exists(WebhookDelivery.objects.filter(event_id=OuterRef("pk")))


def _delete(pks: list[int]) -> None:
    """The ORM delete: the attempts go with their deliveries, and a redelivery of one of
    them keeps its row with `redelivery_of` emptied (four statements per batch)."""
    WebhookDelivery.objects.filter(pk__in=pks).delete()


def deliveries_forget(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int = MAX_BATCHES
) -> int:
    """Delete the finished deliveries past their retention, with their attempts; returns how
    many deliveries."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S)
    candidates = WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status__in=FINISHED_DELIVERY,
        created_at__lt=cutoff,  # the indexed bound; finishing comes after creating
        updated_at__lt=cutoff,
    )
    return forget_in_batches(candidates, _delete, batch_size=batch_size, max_batches=max_batches)
