"""Scoped reads of webhook endpoints and deliveries: the caller's workspace is in every query,
so another workspace's endpoint or delivery does not exist for the caller (404)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from channels.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.actors import Actor
from governance.api.pagination import MAX_PK
from governance.errors import NotFound


class EndpointNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"
    message = "Webhook endpoint not found"


class DeliveryNotFound(NotFound):
    code = "WEBHOOK_DELIVERY_NOT_FOUND"
    message = "Webhook delivery not found"


def endpoints(actor: Actor) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(workspace=actor.workspace)


def endpoint_get(actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    found = endpoints(actor).filter(pk=endpoint_id).first() if endpoint_id <= MAX_PK else None
    if found is None:
        raise EndpointNotFound(webhookID=endpoint_id)
    return found


def deliveries(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's deliveries with their event and attempt log (two queries a page)."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("attempted_at", "pk"))
        )
    )


def delivery_get(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    found = deliveries(endpoint).filter(pk=delivery_id).first() if delivery_id <= MAX_PK else None
    if found is None:
        raise DeliveryNotFound(deliveryID=delivery_id)
    found.endpoint = endpoint
    return found
