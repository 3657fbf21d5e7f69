"""`/api/webhooks…` (issue 17 item 1): workspace admins manage endpoints, the secret is shown
once, every mutation is audited, targets obey the egress allowlist, and the lists cost a fixed
number of queries. No broker: what is sent is tests/channels/test_webhook_delivery.py."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from channels.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.events import event_record
from governance.models import AuditEvent
from tests.factories import actor_for, webhook_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker", "allow_loopback")]

URL = "/api/webhooks"
TARGET = "http://127.0.0.1:9/hooks"


def create(member, **body):
    return member.client().post(
        URL, {"url": TARGET, "event_types": ["gate.opened"], **body}, format="json"
    )


def delivered(endpoint: WebhookEndpoint, attempts: int = 1) -> WebhookDelivery:
    """A delivery of a fresh event to `endpoint`, delivered after `attempts` attempts."""
    with transaction.atomic():
        event = event_record(
            workspace_id=endpoint.workspace_id, event_type="gate.opened", data={"gate_id": "g"}
        )
    delivery = WebhookDelivery.objects.get(event=event, endpoint=endpoint)
    now = timezone.now()
    WebhookAttempt.objects.bulk_create(
        WebhookAttempt(delivery=delivery, attempted_at=now, status_code=200, latency_ms=3)
        for _ in range(attempts)
    )
    delivery.status = DeliveryStatus.DELIVERED
    delivery.attempts = attempts
    delivery.save()
    return delivery


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(admin):
    response = create(admin, description="ops bridge")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert body["event_types"] == ["gate.opened"] and body["is_active"] is True
    assert body["has_secret"] is True
    shown = admin.client().get(f"{URL}/{body['webhook_id']}").json()
    assert "secret" not in shown and shown["has_secret"] is True
    listed = admin.client().get(URL).json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [body["webhook_id"]] and "secret" not in listed[0]
    event = AuditEvent.objects.get(event_type="webhooks.endpoint.created")
    assert event.payload["endpointID"] == body["webhook_id"]
    assert body["secret"] not in str(event.payload)
    assert WebhookEndpoint.objects.get().secret == body["secret"]  # decrypted on read


def test_patch_changes_fields_rotates_the_secret_and_is_audited(admin):
    endpoint, secret = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    client = admin.client()
    response = client.patch(
        f"{URL}/{endpoint.pk}", {"event_types": ["run.failed", "gate.decided"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["event_types"] == ["gate.decided", "run.failed"]
    assert response.json()["secret"] is None
    rotated = client.patch(f"{URL}/{endpoint.pk}", {"rotate_secret": True}, format="json").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    updates = AuditEvent.objects.filter(event_type="webhooks.endpoint.updated").order_by("seq")
    assert [e.payload["secretRotated"] for e in updates] == [False, True]
    assert client.delete(f"{URL}/{endpoint.pk}").status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(event_type="webhooks.endpoint.deleted").count() == 1


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        (["hooks.example.com"], "http://127.0.0.1:9/hooks"),  # not on the list
        (["*"], "http://127.0.0.1:9/hooks"),  # a pattern never reaches loopback
        (["*"], "http://169.254.169.254/latest/meta-data"),  # nor the metadata service
        ([], "http://127.0.0.1:9/hooks"),  # an empty list refuses everything
    ],
)
def test_an_endpoint_on_a_host_the_egress_rules_refuse_is_refused(admin, settings, allowed, url):
    settings.FLOWGATE_HTTP_ALLOWED_HOSTS = allowed
    response = create(admin, url=url)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "WEBHOOK_URL_NOT_ALLOWED"
    assert "url" in response.json()["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_moving_an_endpoint_to_a_refused_host_is_refused(admin, settings):
    endpoint, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    settings.FLOWGATE_HTTP_ALLOWED_HOSTS = ["127.0.0.1"]
    moved = admin.client().patch(
        f"{URL}/{endpoint.pk}", {"url": "http://10.0.0.8/hooks"}, format="json"
    )
    assert moved.status_code == 400 and moved.json()["code"] == "WEBHOOK_URL_NOT_ALLOWED"
    assert WebhookEndpoint.objects.get().url == TARGET


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://127.0.0.1/x", "event_types": ["gate.opened"]},
        {"url": TARGET, "event_types": []},
        {"url": TARGET, "event_types": ["gate.exploded"]},
        {"url": TARGET, "event_types": "gate.opened"},
        {"url": TARGET, "event_types": ["gate.opened"], "secret": "whsec_mine"},
        {"url": 5, "event_types": ["gate.opened"]},
    ],
)
def test_bad_input_is_a_400_and_writes_nothing(admin, body):
    response = admin.client().post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "INVALID_REQUEST"
    assert not WebhookEndpoint.objects.exists()


def test_anonymous_callers_are_refused_everywhere(admin):
    endpoint, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    delivery = delivered(endpoint)
    anonymous = admin.client()
    anonymous.credentials()
    for method, path in [
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}/{endpoint.pk}"),
        ("patch", f"{URL}/{endpoint.pk}"),
        ("delete", f"{URL}/{endpoint.pk}"),
        ("get", f"{URL}/{endpoint.pk}/deliveries"),
        ("post", f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}/redeliver"),
    ]:
        response = getattr(anonymous, method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "AUTHENTICATION_REQUIRED"


def test_another_workspace_sees_nothing(admin, outsider):
    endpoint, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    delivery = delivered(endpoint)
    client = outsider.client()
    assert client.get(URL).json()["webhooks"] == []
    for method, path in [
        ("get", f"{URL}/{endpoint.pk}"),
        ("patch", f"{URL}/{endpoint.pk}"),
        ("delete", f"{URL}/{endpoint.pk}"),
        ("get", f"{URL}/{endpoint.pk}/deliveries"),
        ("post", f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}/redeliver"),
    ]:
        response = getattr(client, method)(path, {"description": "mine"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "WEBHOOK_NOT_FOUND"
    assert WebhookEndpoint.objects.get().description == ""
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize("role", ["viewer", "operator", "reviewer", "agent"])
def test_members_who_are_not_admins_are_refused_and_mutations_audited(admin, request, role):
    member = request.getfixturevalue(role)
    endpoint, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    delivery = delivered(endpoint)
    client = member.client()
    for method, path, audited in [
        ("get", URL, False),
        ("post", URL, True),
        ("get", f"{URL}/{endpoint.pk}", False),
        ("patch", f"{URL}/{endpoint.pk}", True),
        ("delete", f"{URL}/{endpoint.pk}", True),
        ("get", f"{URL}/{endpoint.pk}/deliveries", False),
        ("post", f"{URL}/{endpoint.pk}/deliveries/{delivery.pk}/redeliver", True),
    ]:
        before = AuditEvent.objects.filter(event_type="automation.governance.denied").count()
        body = {"url": TARGET, "event_types": ["gate.opened"]} if method == "post" else {}
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["code"] == "WEBHOOK_ACCESS_DENIED"
        after = AuditEvent.objects.filter(event_type="automation.governance.denied").count()
        assert after == before + (1 if audited else 0), (method, path)
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_redeliver_refuses_a_delivery_still_on_its_way_and_unknown_ids(admin):
    endpoint, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    with transaction.atomic():
        event_record(workspace_id=endpoint.workspace_id, event_type="gate.opened", data={})
    pending = WebhookDelivery.objects.get()
    client = admin.client()
    response = client.post(f"{URL}/{endpoint.pk}/deliveries/{pending.pk}/redeliver")
    assert response.status_code == 409
    assert response.json()["code"] == "WEBHOOK_DELIVERY_UNFINISHED"
    missing = client.post(f"{URL}/{endpoint.pk}/deliveries/999999/redeliver")
    assert missing.status_code == 404 and missing.json()["code"] == "WEBHOOK_DELIVERY_NOT_FOUND"
    assert WebhookDelivery.objects.count() == 1


def test_only_subscribed_active_endpoints_of_the_workspace_get_deliveries(admin, outsider):
    mine, _ = webhook_endpoint(actor_for(admin), TARGET, "gate.opened")
    webhook_endpoint(actor_for(admin), TARGET, "gate.decided")
    webhook_endpoint(actor_for(admin), TARGET, "gate.opened", is_active=False)
    webhook_endpoint(actor_for(outsider), TARGET, "gate.opened")
    with transaction.atomic():
        event = event_record(workspace_id=mine.workspace_id, event_type="gate.opened", data={})
    assert list(WebhookDelivery.objects.values_list("endpoint_id", "event_id")) == [
        (mine.pk, event.pk)
    ]


@pytest.mark.parametrize("count", [2, 8])
def test_lists_cost_the_same_queries_whatever_their_length(admin, django_assert_num_queries, count):
    endpoints = [webhook_endpoint(actor_for(admin), TARGET, "gate.opened")[0] for _ in range(count)]
    for _ in range(count):
        delivered(endpoints[0], attempts=2)
    client = admin.client()
    # Token + membership (authentication), the page.
    with django_assert_num_queries(3):
        assert len(client.get(URL).json()["webhooks"]) == count
    # Authentication, the endpoint, the page with its events, the attempts of the page.
    with django_assert_num_queries(5):
        body = client.get(f"{URL}/{endpoints[0].pk}/deliveries").json()
    assert len(body["deliveries"]) == count * len(endpoints[:1])
    assert all(len(d["attempt_log"]) == 2 for d in body["deliveries"])
