"""Creating and editing automations in the admin console (automations/admin_automation_edit.py):
the service the API uses validates (errors per node), previews write nothing, saves are audited
with the admin as source, refusals are messages, and another workspace's automation is a 404."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from automations.models import Automation
from governance.models import AuditEvent
from tests.factories import AGENTS, actor_for, agent_node, approval_node, new_automation
from tests.support.admin import console, messages_of

pytestmark = pytest.mark.django_db

ADD = "admin:automations_automation_add"
FLOW = {"nodes": [agent_node("draft"), approval_node("approval", "draft")]}


def edit_url(automation: Automation) -> str:
    return reverse("admin:automations_automation_edit", args=[automation.pk])


def spec_body(*, flow=FLOW, agents=AGENTS, **extra) -> dict:
    """The spec form's POST: JSON boxes as the browser sends them."""
    return {
        "name": "Weekly report",
        "description": "",
        "status": "active",
        "agents": json.dumps(agents),
        "flow": json.dumps(flow),
        "execution": json.dumps({"max_parallel": 2}),
        "input_schema": "",
        **extra,
    }


def audit_types(workspace) -> list[str]:
    return list(
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def test_create_previews_then_saves_through_the_service(operator):
    client = console(operator)
    page = client.get(reverse(ADD))
    assert page.status_code == 200
    assert b"Flowgate" in page.content and b"Django administration" not in page.content
    body = spec_body(workspace=str(operator.workspace.pk), automation_id="weekly-admin")

    preview = client.post(reverse(ADD), {**body, "_preview": "Preview"})
    assert preview.status_code == 200
    assert preview.context["previewed"] and preview.context["problems"] is None
    assert b'id="fg-flow-preview"' in preview.content and b"<svg" in preview.content
    assert not Automation.objects.filter(automation_id="weekly-admin").exists()

    saved = client.post(reverse(ADD), {**body, "_save": "Save"}, follow=True)
    automation = Automation.objects.get(automation_id="weekly-admin")
    assert saved.redirect_chain[-1][0] == reverse(
        "admin:automations_automation_change", args=[automation.pk]
    )
    assert "Automation weekly-admin: created (version 1)" in messages_of(saved)
    assert automation.created_by == operator.user
    assert automation.flow["nodes"][1]["gate"]["decisions"] == ["approve", "rework", "cancel"]
    event = AuditEvent.objects.get(event_type="automation.created")
    assert event.payload["automationID"] == "weekly-admin"
    assert event.actor_id == operator.user.username


def test_an_invalid_flow_lists_the_services_problems_per_node_and_writes_nothing(operator):
    client = console(operator)
    flow = {
        "nodes": [
            {**agent_node("draft"), "depend_on": ["x"]},
            approval_node("approval", "ghost"),
            {"node_id": "ping", "kind": "http", "http": {}},
        ]
    }
    before = audit_types(operator.workspace)
    for button in ("_preview", "_save"):
        response = client.post(
            reverse(ADD),
            {**spec_body(flow=flow), "workspace": str(operator.workspace.pk), button: "1"},
        )
        assert response.status_code == 200
        problems = {group["node_id"]: group["problems"] for group in response.context["problems"]}
        assert set(problems) == {"draft", "approval", "ping"}
        assert any("depends_on" in p["message"] for p in problems["draft"])
        assert any("ghost" in p["message"] for p in problems["approval"])
        assert b'data-node-id="ping"' in response.content
        # The graph of what was typed marks the nodes with problems.
        assert b"invalid" in response.content
    assert not Automation.objects.exists()
    assert audit_types(operator.workspace) == before


def test_bad_json_and_wrong_types_are_field_errors(operator):
    client = console(operator)
    body = {
        **spec_body(),
        "workspace": str(operator.workspace.pk),
        "flow": "{not json",
        "agents": json.dumps({"writer": 1}),
        "_save": "1",
    }
    response = client.post(reverse(ADD), body)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "flow" in errors and errors["agents"] == ["Must be a JSON list."]
    assert not Automation.objects.exists()


def test_edit_saves_only_what_changed_with_the_version_as_precondition(operator):
    automation = new_automation(actor_for(operator), flow=FLOW, agents=AGENTS)
    client = console(operator)
    page = client.get(edit_url(automation))
    assert page.status_code == 200
    form = page.context["form"]
    body = {name: form[name].value() for name in form.fields}  # what the page's boxes hold
    body["input_schema"] = ""
    flow = json.loads(body["flow"])
    flow["nodes"][0]["objective"] = "Write it better"
    body["flow"] = json.dumps(flow)

    saved = client.post(edit_url(automation), {**body, "_save": "1"}, follow=True)
    assert f"Automation {automation.automation_id}: saved (version 2)" in messages_of(saved)
    event = AuditEvent.objects.get(event_type="automation.updated")
    assert event.payload["changed"] == ["flow"]
    automation.refresh_from_db()
    assert automation.flow["nodes"][0]["objective"] == "Write it better"

    # The same page posted again is stale: version 1 was edited, 2 is current.
    flow["nodes"][0]["objective"] = "Someone else's edit"
    stale = client.post(edit_url(automation), {**body, "flow": json.dumps(flow), "_save": "1"})
    assert stale.status_code == 200
    assert "changed since you read it" in str(stale.context["form"].non_field_errors())
    automation.refresh_from_db()
    assert automation.version == 2


def test_an_unchanged_save_writes_nothing(operator):
    automation = new_automation(actor_for(operator), flow=FLOW, agents=AGENTS)
    client = console(operator)
    body = spec_body(flow=automation.flow, agents=automation.agents)
    body["execution"] = json.dumps(automation.execution)
    saved = client.post(edit_url(automation), {**body, "version": "1", "_save": "1"}, follow=True)
    assert "Nothing changed." in messages_of(saved)
    assert "automation.updated" not in audit_types(operator.workspace)


def test_save_shows_the_saved_automations_warnings(operator):
    """A governed gate nobody but the author could decide: saved, with the API's warning."""
    flow = {
        "nodes": [
            agent_node("draft"),
            approval_node(
                "approval", "draft", policy={"reviewer_eligibility": "elevated_reviewer"}
            ),
        ]
    }
    client = console(operator)
    body = {**spec_body(flow=flow), "workspace": str(operator.workspace.pk), "_save": "1"}
    saved = client.post(reverse(ADD), body, follow=True)
    shown = messages_of(saved)
    assert any(m.startswith("Automation ") and "created" in m for m in shown)
    assert any("can decide gate 'approval'" in m for m in shown)


def test_a_viewer_is_refused_by_the_service_and_the_refusal_is_audited(viewer, operator):
    automation = new_automation(actor_for(operator), flow=FLOW, agents=AGENTS)
    client = console(viewer)
    body = spec_body(name="Renamed")
    response = client.post(edit_url(automation), {**body, "_save": "1"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "admin:automations_automation_change", args=[automation.pk]
    )
    denied = f"Automation {automation.automation_id}: Automation access denied"
    assert messages_of(response) == [denied]
    automation.refresh_from_db()
    assert automation.name == "Weekly report"
    assert AuditEvent.objects.filter(event_type="automation.governance.denied").exists()

    created = client.post(
        reverse(ADD),
        {**spec_body(), "workspace": str(viewer.workspace.pk), "_save": "1"},
        follow=True,
    )
    assert created.redirect_chain[-1][0] == reverse("admin:automations_automation_changelist")
    assert messages_of(created) == ["Add automation: Your role may not create automations"]
    assert Automation.objects.count() == 1


def test_another_workspaces_automation_and_workspace_are_out_of_reach(operator, outsider):
    automation = new_automation(actor_for(operator), flow=FLOW, agents=AGENTS)
    client = console(outsider)
    assert client.get(edit_url(automation)).status_code == 404
    assert client.post(edit_url(automation), {**spec_body(), "_save": "1"}).status_code == 404
    # The create form offers only the user's own workspaces; acme's is not a valid choice.
    response = client.post(
        reverse(ADD), {**spec_body(), "workspace": str(operator.workspace.pk), "_save": "1"}
    )
    assert response.status_code == 200
    assert "workspace" in response.context["form"].errors
    assert [c for c, _ in response.context["form"].fields["workspace"].choices] == [
        outsider.workspace.pk
    ]
    assert Automation.objects.count() == 1
