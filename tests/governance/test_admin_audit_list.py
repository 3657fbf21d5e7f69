"""The audit list of the admin console (governance/admin.py): typed filters by event type, run,
actor and date, each event linking to the run, gate and automation it names (resolved for the
whole page at once: the same queries for 2 events or 60), never another workspace's objects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.models import Gate
from automations.models import Automation
from governance.models import AuditEvent
from tests.factories import actor_for, awaiting, new_automation
from tests.support.admin import console

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

AUDIT = "admin:governance_auditevent_changelist"


def shown(client, **params) -> list[AuditEvent]:
    response = client.get(reverse(AUDIT), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def decided_gate(admin, reviewer, automation_id: str) -> Gate:
    run = awaiting(actor_for(admin), automation_id=automation_id)
    gate = Gate.objects.get(run=run)
    gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="fine")
    return gate


def test_filters_by_event_type_run_actor_and_date(admin, reviewer):
    gate = decided_gate(admin, reviewer, "first")
    other = decided_gate(admin, reviewer, "second")
    client = console(admin)

    governance = shown(client, event_type="automation.governance")
    assert governance and {e.event_type for e in governance} == {
        "automation.governance.gate_decided"
    }
    of_run = shown(client, run_id=gate.run.run_id)
    assert {e.payload["runID"] for e in of_run} == {gate.run.run_id}
    assert {e.event_type for e in of_run} >= {
        "automation.run_started",
        "automation.governance.gate_decided",
    }
    by_reviewer = shown(client, actor="rita-reviewer")
    assert {e.payload["gateID"] for e in by_reviewer} == {gate.pk, other.pk}
    both = shown(client, actor="rita-reviewer", run_id=other.run.run_id)
    assert [e.payload["gateID"] for e in both] == [other.pk]

    today = timezone.localdate()
    everything = AuditEvent.objects.filter(workspace=admin.workspace).count()
    assert len(shown(client, date=today.isoformat())) == everything
    assert shown(client, date=(today - timedelta(days=1)).isoformat()) == []
    week = f"{today - timedelta(days=7)}..{today}"
    assert len(shown(client, date=week)) == everything
    assert len(shown(client, date=f"..{today - timedelta(days=1)}")) == 0
    assert shown(client, date="yesterday") == []  # not a date: nothing, never a 500
    assert shown(client, run_id="x" * 5000) == []  # cut to the input's length, no 500


def test_the_filter_form_keeps_the_lists_other_parameters(admin, reviewer):
    decided_gate(admin, reviewer, "first")
    page = console(admin).get(reverse(AUDIT), {"actor": "rita-reviewer", "o": "1"})
    html = page.content.decode()
    run_form = html[
        html.index('data-filter="run_id"') : html.index(
            "</form>", html.index('data-filter="run_id"')
        )
    ]
    assert 'name="actor" value="rita-reviewer"' in run_form and 'name="o" value="1"' in run_form
    assert 'name="run_id" value=""' in run_form


def test_each_event_links_to_the_run_gate_and_automation_it_names(admin, reviewer, outsider):
    gate = decided_gate(admin, reviewer, "first")
    # The outsider's automation has the same id: never linked from acme's events.
    new_automation(actor_for(outsider), automation_id="first")
    client = console(admin)
    page = client.get(reverse(AUDIT), {"event_type": "automation.governance.gate_decided"})
    html = page.content.decode()
    run_url = reverse("admin:automations_run_change", args=[gate.run.run_id])
    gate_url = reverse("admin:approvals_gate_change", args=[gate.pk])
    automation = Automation.objects.get(workspace=admin.workspace, automation_id="first")
    automation_url = reverse("admin:automations_automation_change", args=[automation.pk])
    assert f'href="{run_url}" data-object="run"' in html
    assert f'href="{gate_url}" data-object="gate"' in html
    assert f'href="{automation_url}" data-object="automation"' in html
    theirs = Automation.objects.get(workspace=outsider.workspace)
    assert reverse("admin:automations_automation_change", args=[theirs.pk]) not in html
    # Each link opens its page for the workspace's admin.
    for url in (run_url, gate_url, automation_url):
        assert client.get(url).status_code == 200
    # An event naming nothing says so.
    created = shown(client, event_type="governance.member")
    assert created and all(e.object_links == [] for e in created)


def test_a_page_of_events_costs_the_same_queries_whatever_it_links(
    admin, reviewer, django_assert_max_num_queries
):
    decided_gate(admin, reviewer, "first")
    client = console(admin)
    with CaptureQueriesContext(connection) as few:
        assert len(shown(client)) < 20
    first = len(few)
    for n in range(12):
        decided_gate(admin, reviewer, f"more-{n}")
    with django_assert_max_num_queries(first):
        rows = shown(client)
    assert len(rows) >= 40  # a full page (more than 20 events)
    assert sum(1 for e in rows if e.object_links) >= 30
