"""The admin console's webhooks: endpoints saved through the service (egress refusals as form
errors, the secret shown once), the delivery log with a redeliver action (workspace admins)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from channels.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from governance.events import event_record
from governance.models import AuditEvent
from tests.factories import actor_for, webhook_endpoint
from tests.support.admin import console, messages_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker", "allow_loopback")]

ADD = "admin:flowgate_channels_webhookendpoint_add"
DELIVERIES = "admin:flowgate_channels_webhookdelivery_changelist"


def form(workspace, **overrides) -> dict:
    return {
        "workspace": str(workspace.pk),
        "url": "http://127.0.0.1:9/hooks",
        "description": "",
        "event_types": ["gate.opened", "run.failed"],
        "is_active": "on",
        **overrides,
    }


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(admin):
    response = console(admin).post(reverse(ADD), form(admin.workspace), follow=True)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["gate.opened", "run.failed"]
    assert any(endpoint.secret in message for message in messages_of(response))
    assert AuditEvent.objects.get(event_type="webhooks.endpoint.created").actor_id == "ada-admin"


def test_a_host_the_egress_rules_refuse_is_a_form_error(admin):
    response = console(admin).post(reverse(ADD), form(admin.workspace, url="http://10.0.0.1/x"))
    assert response.status_code == 200  # the form again, with the error
    assert "FLOWGATE_HTTP_ALLOWED_HOSTS" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def delivered(endpoint) -> WebhookDelivery:
    with transaction.atomic():
        event = event_record(workspace_id=endpoint.workspace_id, event_type="gate.opened", data={})
    delivery = WebhookDelivery.objects.get(event=event)
    delivery.status = DeliveryStatus.FAILED
    delivery.save(update_fields=["status"])
    return delivery


def test_the_redeliver_action_goes_through_the_service(admin, operator):
    endpoint, _ = webhook_endpoint(actor_for(admin), "http://127.0.0.1:9/hooks", "gate.opened")
    failed = delivered(endpoint)
    action = {"action": "redeliver", "index": "0", "_selected_action": [str(failed.pk)]}

    refused = console(operator).post(reverse(DELIVERIES), action, follow=True)
    assert any("Only workspace admins" in m for m in messages_of(refused))
    assert WebhookDelivery.objects.count() == 1

    response = console(admin).post(reverse(DELIVERIES), action, follow=True)
    assert any("queued" in m for m in messages_of(response))
    again = WebhookDelivery.objects.exclude(pk=failed.pk).get()
    assert again.redelivery_of_id == failed.pk and again.status == DeliveryStatus.PENDING
    assert AuditEvent.objects.filter(event_type="webhooks.delivery.redelivered").count() == 1
