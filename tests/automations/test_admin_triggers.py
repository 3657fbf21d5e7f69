"""The automation page's schedules and webhook triggers in the admin console: every change goes
through the services the API uses (checked, audited), refusals are messages, and a webhook URL
is shown once."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from automations.models import Automation, Run, Schedule, WebhookTrigger
from governance.models import AuditEvent
from tests.factories import actor_for, new_automation
from tests.support.admin import change_url, console, messages_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def automation(operator) -> Automation:
    return new_automation(actor_for(operator), "weekly")


def post(client, url: str, data: dict):
    return client.post(url, data, follow=True)


def fire(token: str):
    return Client().post(f"/api/hooks/{token}", {}, content_type="application/json")


def test_schedules_are_added_toggled_and_deleted_through_the_services(operator, automation):
    client = console(operator)
    url = reverse("admin:automations_automation_schedules", args=[automation.pk])
    response = post(
        client, url, {"cron": "0 9 * * mon-fri", "timezone": "Europe/Berlin", "inputs": '{"a": 1}'}
    )
    schedule = Schedule.objects.get()
    assert messages_of(response) == [
        f"Automation weekly: added schedule {schedule.schedule_id} (0 9 * * mon-fri Europe/Berlin)"
    ]
    assert schedule.inputs == {"a": 1} and schedule.next_fire_at is not None
    page = client.get(change_url(automation)).content.decode()
    assert f'data-schedule-id="{schedule.schedule_id}"' in page
    post(client, url, {"toggle": schedule.schedule_id})
    assert Schedule.objects.get().next_fire_at is None
    post(client, url, {"delete": schedule.schedule_id})
    assert not Schedule.objects.exists()
    events = AuditEvent.objects.filter(event_type__startswith="automation.schedule.")
    assert [(e.event_type, e.actor_id) for e in events.order_by("seq")] == [
        ("automation.schedule.created", "otto-operator"),
        ("automation.schedule.updated", "otto-operator"),
        ("automation.schedule.deleted", "otto-operator"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cron": "99 * * * *"}, "Invalid cron expression"),
        ({"cron": "@daily", "timezone": "Atlantis/Capital"}, "Unknown time zone"),
        ({"cron": "@daily", "inputs": "[1]"}, "Inputs must be a JSON object"),
        ({"toggle": "sch-nope"}, "Schedule not found"),
    ],
)
def test_bad_schedule_input_is_a_message_and_writes_nothing(operator, automation, data, message):
    url = reverse("admin:automations_automation_schedules", args=[automation.pk])
    [shown] = messages_of(post(console(operator), url, data))
    assert message in shown
    assert not Schedule.objects.exists()


def test_a_viewer_is_refused_and_the_refusal_audited(operator, viewer, automation):
    url = reverse("admin:automations_automation_schedules", args=[automation.pk])
    [shown] = messages_of(post(console(viewer), url, {"cron": "@daily"}))
    assert "Automation weekly:" in shown
    assert not Schedule.objects.exists()
    assert AuditEvent.objects.filter(event_type="automation.governance.denied").exists()


def test_webhook_triggers_show_their_url_once_and_rotate_and_revoke(operator, automation):
    client = console(operator)
    url = reverse("admin:automations_automation_hooks", args=[automation.pk])
    [shown] = messages_of(post(client, url, {"trigger_name": "CRM"}))
    token = re.search(r"/api/hooks/(\S+)$", shown).group(1)
    trigger = WebhookTrigger.objects.get()
    assert (
        trigger.name == "CRM" and token not in client.get(change_url(automation)).content.decode()
    )
    assert (
        Client().post(f"/api/hooks/{token}", {}, content_type="application/json").status_code == 202
    )
    [rotated] = messages_of(post(client, url, {"rotate": trigger.trigger_id}))
    new_token = re.search(r"/api/hooks/(\S+)$", rotated).group(1)
    assert fire(token).status_code == 404
    post(client, url, {"revoke": trigger.trigger_id})
    assert fire(new_token).status_code == 404
    assert Run.objects.count() == 1
    events = AuditEvent.objects.filter(event_type__startswith="automation.webhook_trigger.")
    assert [e.event_type.rsplit(".", 1)[1] for e in events.order_by("seq")] == [
        "created",
        "rotated",
        "revoked",
    ]


def test_another_workspace_automation_is_a_404(outsider, automation):
    url = reverse("admin:automations_automation_hooks", args=[automation.pk])
    assert console(outsider).post(url, {"trigger_name": "x"}).status_code == 404
    assert not WebhookTrigger.objects.exists()
