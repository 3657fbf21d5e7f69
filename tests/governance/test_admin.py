"""Every model registered in the admin opens: changelists, add forms and change forms."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from governance.models import User
from tests.automations.test_api import create


@pytest.fixture
def superuser_client(client, db):
    User.objects.create_superuser("root", "root@example.com", "pw-for-tests")
    client.login(username="root", password="pw-for-tests")
    return client


@pytest.mark.django_db
def test_every_registered_model_opens(superuser_client, operator):
    create(operator, automation_id="weekly")
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert superuser_client.get(changelist).status_code == 200, changelist
        if model_admin.has_add_permission(_request(superuser_client)):
            add = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
            assert superuser_client.get(add).status_code == 200, add
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert superuser_client.get(change).status_code == 200, change


def _request(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    return request


@pytest.mark.django_db
def test_audit_events_are_read_only_in_the_admin(superuser_client, operator):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    event = AuditEvent.objects.first()
    url = reverse("admin:governance_auditevent_change", args=[event.pk])
    response = superuser_client.post(url, {"event_type": "forged"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.event_type != "forged"


@pytest.mark.django_db
def test_admin_verify_chain_action_reports_ok(superuser_client, operator):
    from governance.models import AuditEvent

    create(operator, automation_id="weekly")
    ids = list(AuditEvent.objects.values_list("pk", flat=True))
    response = superuser_client.post(
        reverse("admin:governance_auditevent_changelist"),
        {"action": "verify_chains", "index": "0", "_selected_action": ids},
    )
    assert response.status_code == 302
    messages = [m.message for m in response.wsgi_request._messages]
    assert messages == [f"acme/ops: chain ok ({len(ids)} events)"]
