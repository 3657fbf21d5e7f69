"""Input and output shapes of `/api/webhooks…`. The secret is output only, once: in the answer
to the create and to a PATCH with `rotate_secret`; otherwise `has_secret` says it is set."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from automations.api.run_control_views import StrictInputSerializer
from automations.api.serializers import to_ms
from channels.api.serializers import StrictBooleanField
from channels.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field


class EventTypesField(serializers.ListField):
    child = StrictCharField(max_length=100)

    def __init__(self, **kwargs):
        super().__init__(
            max_length=50,
            help_text="Event types to receive (docs/api.md, Events), e.g. gate.opened.",
            **kwargs,
        )


class EndpointUpdateInputSerializer(StrictInputSerializer):
    url = StrictCharField(max_length=2048, required=False)
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
    event_types = EventTypesField(required=False)
    is_active = StrictBooleanField(required=False)
    rotate_secret = StrictBooleanField(
        required=False, help_text="Replace the secret; the answer shows the new one, once."
    )


class EndpointCreateInputSerializer(StrictInputSerializer):
    url = StrictCharField(max_length=2048)
    description = StrictCharField(max_length=200, required=False, allow_blank=True)
    event_types = EventTypesField()
    is_active = StrictBooleanField(required=False)


class EndpointSerializer(serializers.Serializer):
    webhook_id = serializers.IntegerField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    has_secret = serializers.BooleanField()
    created_at_ms = serializers.IntegerField()
    updated_at_ms = serializers.IntegerField()


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        allow_null=True,
        help_text="whsec_<base64>: the signing secret, shown only in the answer that created "
        "or rotated it (null otherwise).",
    )


class EndpointListSerializer(serializers.Serializer):
    webhooks = EndpointSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class AttemptSerializer(serializers.Serializer):
    attempted_at_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True, help_text="null: no HTTP answer.")
    latency_ms = serializers.IntegerField()
    error = serializers.CharField()


class DeliverySerializer(serializers.Serializer):
    delivery_id = serializers.IntegerField()
    webhook_id = serializers.IntegerField()
    event_id = serializers.CharField(help_text="Also the `webhook-id` header of every attempt.")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    response_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at_ms = serializers.IntegerField(
        allow_null=True, help_text="When the next try is due; null once delivered or failed."
    )
    delivered_at_ms = serializers.IntegerField(allow_null=True)
    redelivery_of = serializers.IntegerField(allow_null=True)
    created_at_ms = serializers.IntegerField()
    attempt_log = AttemptSerializer(many=True)


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class ListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    cursor = cursor_field()


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "webhook_id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
        "has_secret": bool(endpoint.secret),
        "created_at_ms": to_ms(endpoint.created_at),
        "updated_at_ms": to_ms(endpoint.updated_at),
    }


def endpoint_secret_json(endpoint: WebhookEndpoint, secret: str | None) -> dict[str, Any]:
    return {**endpoint_json(endpoint), "secret": secret}


def delivery_json(delivery: WebhookDelivery) -> dict[str, Any]:
    unfinished = delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
    return {
        "delivery_id": delivery.pk,
        "webhook_id": delivery.endpoint_id,
        "event_id": delivery.event.event_id,
        "event_type": delivery.event.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.last_status_code,
        "latency_ms": delivery.last_latency_ms,
        "last_error": delivery.last_error,
        "next_attempt_at_ms": to_ms(delivery.next_attempt_at) if unfinished else None,
        "delivered_at_ms": to_ms(delivery.delivered_at),
        "redelivery_of": delivery.redelivery_of_id,
        "created_at_ms": to_ms(delivery.created_at),
        "attempt_log": [
            {
                "attempted_at_ms": to_ms(a.attempted_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in delivery.attempt_log.all()
        ],
    }
