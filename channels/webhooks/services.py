"""Writes to webhook endpoints and redeliveries: authorised, validated, audited.

Every change goes through these functions, from the API and the admin alike. Only human
workspace admins manage endpoints (a refusal of a mutation is audited, as everywhere). Each
write and its audit event commit in one transaction.

The target URL obeys the egress rules of `http` nodes (`automations.nodes.http`): its host must
be on `FLOWGATE_HTTP_ALLOWED_HOSTS` and resolve only to addresses that list allows; an endpoint
failing that is refused with 400 `WEBHOOK_URL_NOT_ALLOWED` at create and update, and every send
checks again (the allowlist or DNS may change), pinning the checked address.

The signing secret (`whsec_` + base64 of 32 random bytes, the Standard Webhooks form) is
generated here, never chosen by the client, returned once (create, `rotate_secret`), stored
encrypted and never audited.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from automations.nodes.base import NodeFailure
from automations.nodes.http import HostAllowlist, allowed_addresses
from channels.models import (
    UNFINISHED_DELIVERY,
    WebhookDelivery,
    WebhookEndpoint,
)
from channels.webhooks import sending
from channels.webhooks.selectors import DeliveryNotFound
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, Forbidden, InvalidRequest
from governance.events import declared_event_types
from governance.policy import deny

DENIED = ("WEBHOOK_ACCESS_DENIED", "Only workspace admins may manage webhooks")
FIELDS = ("url", "description", "event_types", "is_active")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def require_webhook_admin(actor: Actor, *, action: str, audit: bool = True) -> None:
    """403 unless the actor is a human workspace admin (audited for mutations)."""
    if actor.is_workspace_admin:
        return
    code, message = DENIED
    if not audit:
        raise Forbidden(message, code=code)
    deny(actor, action=action, automation_id=None, code=code, message=message)


def url_check(url: str) -> None:
    """400 `WEBHOOK_URL_NOT_ALLOWED` unless `url` is an http(s) URL the egress rules let
    Flowgate call (the allowlist and the addresses its host resolves to)."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        target = None
    if target is None or target.scheme not in ("http", "https") or not target.host:
        raise InvalidRequest(
            "Invalid webhook endpoint", fields={"url": ["Must be an http(s) URL."]}
        )
    try:
        allowed_addresses(target, HostAllowlist.from_settings())
    except NodeFailure as refused:
        raise InvalidRequest(
            "Webhook URL not allowed",
            code="WEBHOOK_URL_NOT_ALLOWED",
            fields={"url": [refused.reason]},
        ) from None


def _check_event_types(types: Any) -> list[str]:
    known = declared_event_types()
    unknown = sorted({t for t in types if t not in known})
    if not types or unknown:
        message = f"Unknown event types: {', '.join(unknown)}." if unknown else "Required."
        raise InvalidRequest(
            "Invalid webhook endpoint",
            fields={"event_types": [message, f"Known: {', '.join(known)}."]},
        )
    return sorted(set(types))


@dataclass
class EndpointChange:
    """The endpoint after a change, and its secret when this change created or rotated it
    (the only time it is shown)."""

    endpoint: WebhookEndpoint
    secret: str | None = None


def endpoint_create(*, actor: Actor, data: dict[str, Any]) -> EndpointChange:
    """A new endpoint in the actor's workspace (admins only) with a fresh secret."""
    require_webhook_admin(actor, action="webhooks.endpoint.create")
    url_check(data["url"])
    endpoint = WebhookEndpoint(
        workspace=actor.workspace,
        url=data["url"],
        description=data.get("description", ""),
        event_types=_check_event_types(data["event_types"]),
        is_active=data.get("is_active", True),
        secret=new_secret(),
    )
    with transaction.atomic():
        endpoint.save()
        _audit(actor, endpoint, "webhooks.endpoint.created", changed=sorted(data))
    return EndpointChange(endpoint, endpoint.secret)


def endpoint_update(
    *, actor: Actor, endpoint: WebhookEndpoint, data: dict[str, Any]
) -> EndpointChange:
    """Change any of `FIELDS`; `rotate_secret: true` replaces the secret (shown once)."""
    require_webhook_admin(actor, action="webhooks.endpoint.update")
    if "url" in data:
        url_check(data["url"])
    if "event_types" in data:
        data = {**data, "event_types": _check_event_types(data["event_types"])}
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        changed = [n for n in FIELDS if n in data and getattr(locked, n) != data[n]]
        for name in changed:
            setattr(locked, name, data[name])
        secret = None
        if data.get("rotate_secret"):
            secret = locked.secret = new_secret()
        if changed or secret:
            locked.save(update_fields=[*changed, *(["secret"] if secret else []), "updated_at"])
            if "is_active" in changed and locked.is_active:
                sending.send_after_commit([locked.pk])  # what waited while it was inactive
            _audit(
                actor,
                locked,
                "webhooks.endpoint.updated",
                changed=changed,
                secret_rotated=bool(secret),
            )
    return EndpointChange(locked, secret)


def endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries (unfinished ones are never sent)."""
    require_webhook_admin(actor, action="webhooks.endpoint.delete")
    with transaction.atomic():
        _audit(actor, endpoint, "webhooks.endpoint.deleted", changed=[])
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


def delivery_redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event to its endpoint again, as a new delivery at the end of the
    endpoint's queue (same `webhook-id`, so the receiver can tell it is the same message).
    409 `WEBHOOK_DELIVERY_UNFINISHED` while the delivery itself is still on its way."""
    require_webhook_admin(actor, action="webhooks.delivery.redeliver")
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if locked is None:  # retention deleted it since the caller read it
            raise DeliveryNotFound(deliveryID=delivery.pk)
        if locked.status in UNFINISHED_DELIVERY:
            raise Conflict(
                "The delivery is still being sent; redeliver it once it is delivered or failed",
                code="WEBHOOK_DELIVERY_UNFINISHED",
                status=locked.status,
            )
        again = WebhookDelivery.objects.create(
            endpoint_id=locked.endpoint_id,
            event_id=locked.event_id,
            next_attempt_at=now,
            redelivery_of=locked,
        )
        audit_record(
            workspace=actor.workspace,
            event_type="webhooks.delivery.redelivered",
            actor=actor,
            payload={
                "endpointID": locked.endpoint_id,
                "deliveryID": locked.pk,
                "redeliveryID": again.pk,
                "eventType": delivery.event.event_type,
            },
        )
        sending.send_after_commit([locked.endpoint_id])
    again.event = delivery.event
    again.endpoint = delivery.endpoint
    return again


def _audit(
    actor: Actor,
    endpoint: WebhookEndpoint,
    event_type: str,
    *,
    changed: list[str],
    secret_rotated: bool = False,
) -> None:
    audit_record(
        workspace=actor.workspace,
        event_type=event_type,
        actor=actor,
        payload={
            "endpointID": endpoint.pk,
            "url": endpoint.url,
            "eventTypes": endpoint.event_types,
            "isActive": endpoint.is_active,
            "changed": [n for n in changed if n not in ("rotate_secret",)],
            "secretRotated": secret_rotated,
        },
    )
