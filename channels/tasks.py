"""Celery tasks delivering approval cards: thin, ids in, idempotent (channels/delivery.py).

`post_cards` and `update_cards` fan out one `sync_card` per card, so each card retries on its
own schedule (Retry-After, backoff) and a failing platform never holds up the others.
`send_notice` tells one chat user the answer to their click after the request was answered.
`forget_receipts` keeps the interaction receipts table from growing forever.
`send_webhooks` drains one webhook endpoint's deliveries in order; `sweep_webhooks` re-sends
the drains whose message was lost (channels/webhooks/sending.py); `forget_webhook_deliveries`
deletes the finished ones past their retention (channels/webhooks/retention.py).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from channels import delivery, notices
from channels.interactions.deciding import receipts_forget
from channels.services import link_tokens_forget
from channels.webhooks import retention, sending


@shared_task(name="channels.post_cards", ignore_result=True)
def post_cards(gate_id: str, purpose: str = delivery.CARD) -> None:
    """A gate opened (or is reminded/escalated): post its card to every active connection."""
    for message_pk in delivery.cards_prepare(gate_id=gate_id, purpose=purpose):
        sync_card.delay(message_pk)


@shared_task(name="channels.update_cards", ignore_result=True)
def update_cards(gate_id: str) -> None:
    """A gate closed (decided on any surface, or expired) or a quorum gate counted another
    approval: update every card of it."""
    for message_pk in delivery.cards_to_sync(gate_id=gate_id):
        sync_card.delay(message_pk)


@shared_task(bind=True, name="channels.sync_card", ignore_result=True, max_retries=None)
def sync_card(self, message_pk: int) -> None:
    """Bring one card to its gate's current state; retried with the countdown it asks for."""
    try:
        delivery.card_sync(message_pk=message_pk, attempt=self.request.retries)
    except delivery.Deferred as later:
        raise self.retry(countdown=later.countdown) from later


@shared_task(name="channels.sync_overdue_cards", ignore_result=True)
def sync_overdue_cards() -> None:
    """Beat: send again the cards whose delivery task was lost, and post those never prepared
    (see `delivery.cards_overdue` and `delivery.cards_missing`)."""
    now = timezone.now()
    for message_pk in [*delivery.cards_overdue(now=now), *delivery.cards_missing(now=now)]:
        sync_card.delay(message_pk)


@shared_task(bind=True, name="channels.send_notice", ignore_result=True, max_retries=None)
def send_notice(self, notice: dict) -> None:
    """Tell a chat user the answer to their click (channels/notices.py); retried like a card."""
    try:
        notices.notice_send(notice, attempt=self.request.retries)
    except delivery.Deferred as later:
        raise self.retry(countdown=later.countdown) from later


@shared_task(name="channels.forget_receipts", ignore_result=True)
def forget_receipts() -> None:
    """Beat: forget interaction receipts older than any redelivery (`RECEIPT_RETENTION`), and
    used link tokens older than any token lives."""
    now = timezone.now()
    receipts_forget(now=now)
    link_tokens_forget(now=now)


@shared_task(name=sending.SEND_WEBHOOKS, ignore_result=True)
def send_webhooks(endpoint_pk: int) -> None:
    """Send the endpoint's unfinished deliveries in order; come back when a retry is due."""
    countdown = sending.endpoint_drain(endpoint_pk)
    if countdown is not None:
        sending.send_now(endpoint_pk, countdown=countdown)


@shared_task(name="channels.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> None:
    """Beat: drain again the endpoints whose drain message was lost."""
    for endpoint_pk in sending.endpoints_overdue(now=timezone.now()):
        sending.send_now(endpoint_pk)


@shared_task(name="channels.forget_webhook_deliveries", ignore_result=True)
def forget_webhook_deliveries() -> int:
    """Beat: delete the finished webhook deliveries past their retention, with their attempts."""
    return retention.deliveries_forget(now=timezone.now())
