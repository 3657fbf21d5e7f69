"""The drain of one endpoint (channels.webhooks.sending), called in this process against the
local receiver: order, the stop at a retry, failure after the last attempt, and the sweep's
pick of endpoints whose drain message was lost. The worker end to end is
tests/channels/test_webhook_delivery.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from channels.models import DeliveryStatus, WebhookDelivery
from channels.webhooks import sending
from governance.events import event_record
from tests.factories import actor_for, webhook_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker", "allow_loopback")]


def three_events(endpoint) -> list[WebhookDelivery]:
    with transaction.atomic():
        for i in range(3):
            event_record(
                workspace_id=endpoint.workspace_id, event_type="gate.opened", data={"i": i}
            )
    return list(WebhookDelivery.objects.order_by("pk"))


def test_a_drain_sends_in_order_and_stops_at_a_retry(admin, stand_in):
    endpoint, _ = webhook_endpoint(actor_for(admin), stand_in.url, "gate.opened")
    _, second, _ = three_events(endpoint)
    stand_in.statuses = [200, 503]

    countdown = sending.endpoint_drain(endpoint.pk)

    assert [r.json()["data"]["i"] for r in stand_in.requests] == [0, 1]  # the third waits
    assert countdown == sending.backoff(1)
    statuses = [d.status for d in WebhookDelivery.objects.order_by("pk")]
    assert statuses == [DeliveryStatus.DELIVERED, DeliveryStatus.RETRYING, DeliveryStatus.PENDING]
    assert sending.endpoint_drain(endpoint.pk) == pytest.approx(sending.backoff(1), abs=1)
    assert len(stand_in.requests) == 2  # not due yet: nothing sent, the third still waits

    WebhookDelivery.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now())
    assert sending.endpoint_drain(endpoint.pk) is None
    assert [r.json()["data"]["i"] for r in stand_in.requests] == [0, 1, 1, 2]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_the_last_attempt_fails_the_delivery_and_the_next_one_goes(admin, stand_in, settings):
    settings.FLOWGATE_WEBHOOK_MAX_ATTEMPTS = 1
    endpoint, _ = webhook_endpoint(actor_for(admin), stand_in.url, "gate.opened")
    three_events(endpoint)
    stand_in.statuses = [500]
    assert sending.endpoint_drain(endpoint.pk) is None
    statuses = [d.status for d in WebhookDelivery.objects.order_by("pk")]
    assert statuses == [DeliveryStatus.FAILED, DeliveryStatus.DELIVERED, DeliveryStatus.DELIVERED]


def test_an_inactive_endpoint_keeps_its_deliveries(admin, stand_in):
    endpoint, _ = webhook_endpoint(actor_for(admin), stand_in.url, "gate.opened")
    three_events(endpoint)
    endpoint.is_active = False
    endpoint.save(update_fields=["is_active"])
    assert sending.endpoint_drain(endpoint.pk) is None
    assert stand_in.requests == []
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}


def test_the_sweep_finds_endpoints_whose_drain_was_lost(admin, stand_in):
    endpoint, _ = webhook_endpoint(actor_for(admin), stand_in.url, "gate.opened")
    deliveries = three_events(endpoint)
    now = timezone.now()
    assert sending.endpoints_overdue(now=now) == []  # just created: its drain is on its way
    later = now + timedelta(seconds=sending.OVERDUE_GRACE_S + 1)
    assert sending.endpoints_overdue(now=later) == [endpoint.pk]
    WebhookDelivery.objects.filter(pk=deliveries[0].pk).update(
        claimed_until=later + timedelta(seconds=30)
    )
    assert sending.endpoints_overdue(now=later) == [endpoint.pk]  # the others are not claimed
