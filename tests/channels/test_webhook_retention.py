"""Retention of webhook deliveries (`channels.webhooks.retention`, beat
`channels.forget_webhook_deliveries`): finished deliveries past the retention go with their
attempts, in bounded batches; unfinished or leased ones stay; and the event retention keeps the
events deliveries still refer to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from channels.tasks import forget_webhook_deliveries
from channels.webhooks.retention import deliveries_forget
from channels.webhooks.selectors import DeliveryNotFound
from channels.webhooks.services import delivery_redeliver
from governance.events import event_record, events_forget, events_stamp
from governance.models import WorkspaceEvent
from tests.factories import actor_for, webhook_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback")]

OLD = timedelta(days=31)


@pytest.fixture
def endpoint(admin):
    endpoint, _ = webhook_endpoint(actor_for(admin), "http://127.0.0.1:9/hook", "gate.opened")
    return endpoint


def deliveries(endpoint, n: int, *, event_type: str = "gate.opened") -> list[WebhookDelivery]:
    """n events of `event_type`, stamped, with the deliveries the endpoint gets for them."""
    with transaction.atomic():
        for i in range(n):
            event_record(workspace_id=endpoint.workspace_id, event_type=event_type, data={"i": i})
    events_stamp(endpoint.workspace_id)
    return list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk"))


def finish(rows, status=DeliveryStatus.DELIVERED, *, age=OLD, attempts=1, **fields) -> None:
    """Make `rows` `status`, created and last changed `age` ago, with `attempts` attempts."""
    at = timezone.now() - age
    pks = [row.pk for row in rows]
    WebhookDelivery.objects.filter(pk__in=pks).update(
        status=status, created_at=at, updated_at=at, **fields
    )
    WebhookAttempt.objects.bulk_create(
        WebhookAttempt(delivery_id=pk, attempted_at=at, status_code=200, latency_ms=5)
        for pk in pks
        for _ in range(attempts)
    )


def age_events(age=OLD) -> None:
    WorkspaceEvent.objects.update(created_at=timezone.now() - age)


def remaining(endpoint) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def test_finished_deliveries_past_the_retention_go_with_their_attempts(settings, endpoint):
    settings.FLOWGATE_WEBHOOK_DELIVERY_RETENTION_S = 30 * 86400
    delivered, failed, pending, retrying, finished_lately, leased, young = deliveries(endpoint, 7)
    finish([delivered], attempts=2)
    finish([failed], DeliveryStatus.FAILED, attempts=3)
    finish([pending], DeliveryStatus.PENDING, attempts=0)  # its endpoint was inactive for long
    finish([retrying], DeliveryStatus.RETRYING)
    finish([finished_lately])
    WebhookDelivery.objects.filter(pk=finished_lately.pk).update(updated_at=timezone.now())
    finish([leased], claimed_until=timezone.now() + timedelta(seconds=30))
    finish([young], age=timedelta(days=29))

    assert forget_webhook_deliveries.apply().get() == 2

    kept = [pending, retrying, finished_lately, leased, young]
    assert remaining(endpoint) == [row.pk for row in kept]
    assert set(WebhookAttempt.objects.values_list("delivery_id", flat=True)) == {
        row.pk for row in kept if row is not pending
    }
    scheduled = settings.CELERY_BEAT_SCHEDULE["forget-webhook-deliveries"]
    assert scheduled["task"] == forget_webhook_deliveries.name and scheduled["schedule"] <= 3600


def test_the_event_retention_keeps_the_events_deliveries_still_refer_to(endpoint):
    delivered, pending = deliveries(endpoint, 2)
    deliveries(endpoint, 1, event_type="run.paused")  # no endpoint subscribes: no delivery
    finish([delivered])
    finish([pending], DeliveryStatus.PENDING, attempts=0)
    age_events()

    assert events_forget() == 1  # only the event nothing refers to
    assert set(WorkspaceEvent.objects.values_list("pk", flat=True)) == {
        delivered.event_id,
        pending.event_id,
    }
    assert deliveries_forget() == 1
    assert events_forget() == 1  # its delivery gone, the delivered event goes too
    assert list(WorkspaceEvent.objects.values_list("pk", flat=True)) == [pending.event_id]
    assert remaining(endpoint) == [pending.pk]


def test_a_redelivery_outlives_the_delivery_it_repeats(admin, endpoint, no_broker):
    (original,) = deliveries(endpoint, 1)
    finish([original])
    again = delivery_redeliver(actor=actor_for(admin), delivery=original)
    age_events()

    assert deliveries_forget() == 1 and events_forget() == 0

    assert remaining(endpoint) == [again.pk]
    again.refresh_from_db()
    assert again.redelivery_of_id is None and again.status == DeliveryStatus.PENDING
    assert WorkspaceEvent.objects.filter(pk=again.event_id).exists()


def test_redelivering_a_delivery_retention_just_deleted_is_404(admin, endpoint, no_broker):
    (original,) = deliveries(endpoint, 1)
    finish([original])
    deliveries_forget()  # between the caller's read of the delivery and the redelivery

    with pytest.raises(DeliveryNotFound):
        delivery_redeliver(actor=actor_for(admin), delivery=original)
    assert remaining(endpoint) == []


def test_a_small_batch_size_forgets_everything_over_several_transactions(settings, endpoint):
    settings.FLOWGATE_RETENTION_BATCH_SIZE = 2
    rows = deliveries(endpoint, 6)
    finish(rows[:5])

    with CaptureQueriesContext(connection) as queries:
        assert deliveries_forget() == 5

    table = 'DELETE FROM "flowgate_channels_webhookdelivery"'
    assert len([q for q in queries if q["sql"].startswith(table)]) == 3  # 2 + 2 + 1
    assert remaining(endpoint) == [rows[5].pk]


def test_a_run_stops_after_its_batches_and_the_next_one_goes_on(endpoint):
    rows = deliveries(endpoint, 5)
    finish(rows)

    assert deliveries_forget(batch_size=2, max_batches=2) == 4
    assert remaining(endpoint) == [rows[4].pk]
    assert deliveries_forget(batch_size=2, max_batches=2) == 1


@pytest.mark.parametrize("count", [3, 12])
def test_a_run_costs_the_same_queries_whatever_its_number_of_rows(admin, endpoint, count):
    rows = deliveries(endpoint, count)
    finish(rows, attempts=2)

    with CaptureQueriesContext(connection) as queries:
        assert deliveries_forget(batch_size=100) == count

    # One batch: its transaction (2), the locking select, then the ORM delete: the rows, the
    # attempts, the redeliveries' `redelivery_of` emptied, the deliveries.
    assert len(queries) == 7, "\n".join(q["sql"][:160] for q in queries)
