"""The operator's console for automations and runs (automations/admin.py): every action is a
service call with the staff user as the actor, refusals are messages, staff who are not
superusers see only their workspaces, and the large lists never count their whole table."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.decisions import gate_decide
from automations.models import (
    Automation,
    AutomationStatus,
    AutomationUserObjectPermission,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
)
from governance.models import AuditEvent, Role
from tests.factories import actor_for, awaiting, make_run, output
from tests.support.admin import change_url, console, messages_of, redirected_to

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RUNS = "admin:automations_run_changelist"
AUTOMATIONS = "admin:automations_automation_changelist"


def bulk(client, changelist: str, action: str, pks, **data):
    """Post a changelist action for the objects `pks` with the action bar's inputs, and follow
    the redirect to the page that shows its messages."""
    return client.post(
        reverse(changelist),
        {"action": action, "index": "0", "_selected_action": [str(pk) for pk in pks], **data},
        follow=True,
    )


def post(client, url: str, data: dict):
    """Post an object page's form and follow the redirect to the page showing the outcome."""
    return client.post(url, data, follow=True)


def act_url(obj) -> str:
    meta = obj._meta
    key = obj.run_id if isinstance(obj, Run) else obj.pk
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_act", args=[key])


@pytest.fixture
def op_run(operator):
    return make_run(actor_for(operator), status=RunStatus.RUNNING)


@pytest.fixture
def foreign_run(outsider):
    return make_run(actor_for(outsider), status=RunStatus.RUNNING, automation_id="foreign")


def run_audit(run, verb) -> AuditEvent:
    return AuditEvent.objects.get(event_type=f"automation.run.{verb}", payload__runID=run.run_id)


# --- Run actions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "start", "end", "verb", "event"),
    [
        ("pause", RunStatus.RUNNING, RunStatus.PAUSED, "paused", "run_paused"),
        ("resume", RunStatus.PAUSED, RunStatus.QUEUED, "resumed", "run_resumed"),
        ("cancel", RunStatus.RUNNING, RunStatus.CANCELLED, "cancelled", "run_stopped"),
        ("recover", RunStatus.PAUSED, RunStatus.QUEUED, "recovered", "run_recovered_from_pause"),
    ],
)
def test_run_actions_go_through_run_control(operator, action, start, end, verb, event):
    run = make_run(actor_for(operator), status=start)
    client = console(operator)
    response = bulk(client, RUNS, action, [run.pk], reason="night shift")
    if action in ("cancel", "recover"):  # destructive: the list asks first, nothing happens yet
        assert b'data-testid="confirm-bulk"' in response.content
        assert run.run_id.encode() in response.content
        assert Run.objects.get(pk=run.pk).status == start
        response = bulk(client, RUNS, action, [run.pk], reason="night shift", confirmed="yes")
    assert response.status_code == 200
    assert messages_of(response) == [f"Run {run.run_id}: {end}"]
    run.refresh_from_db()
    assert run.status == end
    assert run.version == 2
    audit = run_audit(run, verb)
    assert (audit.actor_kind, audit.actor_id, audit.payload["reason"]) == (
        "human",
        "otto-operator",
        "night shift",
    )
    assert (audit.payload["fromStatus"], audit.payload["toStatus"]) == (start, end)
    assert audit.payload["actor"]["source"] == "admin"
    assert LifecycleEvent.objects.filter(run=run, event=event, reason="night shift").exists()


def test_run_page_buttons_call_the_same_service(operator, op_run):
    client = console(operator)
    response = post(client, act_url(op_run), {"action": "pause", "reason": "deploy freeze"})
    assert response.status_code == 200 and redirected_to(response) == change_url(op_run)
    assert messages_of(response) == [f"Run {op_run.run_id}: paused"]
    op_run.refresh_from_db()
    assert (op_run.status, op_run.pause_reason) == (RunStatus.PAUSED, "deploy freeze")
    response = post(client, act_url(op_run), {"action": "recover", "confirmed": "yes"})
    assert messages_of(response) == [f"Run {op_run.run_id}: queued"]
    op_run.refresh_from_db()
    assert op_run.status == RunStatus.QUEUED
    assert run_audit(op_run, "recovered").actor_id == "otto-operator"
    assert client.get(act_url(op_run)).status_code == 405  # a GET never acts


def test_a_refused_transition_is_a_message_and_changes_nothing(operator):
    run = make_run(actor_for(operator), status=RunStatus.COMPLETED)
    client = console(operator)
    response = bulk(client, RUNS, "pause", [run.pk])
    assert response.status_code == 200
    assert messages_of(response) == [f"Run {run.run_id}: Run is not pausable"]
    response = post(client, act_url(run), {"action": "resume"})
    assert response.status_code == 200
    assert messages_of(response) == [f"Run {run.run_id}: Run is not paused"]
    run.refresh_from_db()
    assert (run.status, run.version) == (RunStatus.COMPLETED, 1)
    assert not AuditEvent.objects.filter(event_type__startswith="automation.run.").exists()


def test_cancel_of_a_finished_run_says_so(operator):
    run = make_run(actor_for(operator), status=RunStatus.COMPLETED)
    response = bulk(console(operator), RUNS, "cancel", [run.pk], confirmed="yes")
    assert messages_of(response) == [f"Run {run.run_id}: already completed, nothing to cancel"]


def test_a_viewer_is_refused_by_the_policy_and_the_denial_is_audited(operator, viewer, op_run):
    response = bulk(console(viewer), RUNS, "pause", [op_run.pk])
    assert response.status_code == 200
    assert messages_of(response) == [f"Run {op_run.run_id}: Automation access denied"]
    op_run.refresh_from_db()
    assert op_run.status == RunStatus.RUNNING
    denial = AuditEvent.objects.get(event_type="automation.governance.denied")
    assert denial.actor_id == "vera-viewer"
    assert denial.payload["actor"]["source"] == "admin"
    assert denial.payload["code"] == "AUTOMATION_V2_ACCESS_DENIED"


def test_unknown_or_oversized_input_on_the_run_page_is_refused(operator, op_run):
    client = console(operator)
    for data in ({"action": "delete"}, {"action": "pause", "reason": "x" * 2001}, {}):
        response = post(client, act_url(op_run), data)
        assert response.status_code == 200
        assert messages_of(response) == ["Unknown action or invalid input."]
    op_run.refresh_from_db()
    assert op_run.status == RunStatus.RUNNING


# --- Scoping -----------------------------------------------------------------------------------


def test_staff_see_and_act_only_within_their_workspaces(operator, op_run, foreign_run):
    client = console(operator)
    page = client.get(reverse(RUNS))
    assert page.status_code == 200
    assert op_run.run_id.encode() in page.content
    assert foreign_run.run_id.encode() not in page.content
    # The filters offer only the operator's workspace and automations.
    assert b"acme/ops" in page.content
    assert b"globex/ops" not in page.content and b"foreign" not in page.content
    # Another workspace's run is a 404, on its page and its buttons, like a missing one.
    assert client.get(change_url(foreign_run)).status_code == 404
    assert client.get(reverse("admin:automations_run_change", args=[10**9])).status_code == 404
    assert client.post(act_url(foreign_run), {"action": "pause"}).status_code == 404
    # An action naming it acts on nothing: the selection is taken from the scoped queryset.
    bulk(client, RUNS, "pause", [foreign_run.pk])
    foreign_run.refresh_from_db()
    assert foreign_run.status == RunStatus.RUNNING
    # Its lifecycle events are not listed either.
    events = client.get(reverse("admin:automations_lifecycleevent_changelist"))
    assert op_run.run_id.encode() in events.content
    assert foreign_run.run_id.encode() not in events.content
    foreign_event = LifecycleEvent.objects.filter(run=foreign_run).first()
    assert client.get(change_url(foreign_event)).status_code == 404


def test_a_filter_naming_another_workspace_shows_nothing(operator, op_run, foreign_run):
    client = console(operator)
    url = reverse(RUNS)
    mine = client.get(url, {"workspace__id__exact": op_run.workspace_id})
    assert op_run.run_id.encode() in mine.content
    theirs = client.get(url, {"workspace__id__exact": foreign_run.workspace_id})
    assert theirs.status_code == 200
    assert foreign_run.run_id.encode() not in theirs.content
    by_automation = client.get(url, {"automation__id__exact": foreign_run.automation_id})
    assert foreign_run.run_id.encode() not in by_automation.content


def test_superusers_see_every_workspace(operator, op_run, foreign_run, admin_user):
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse(RUNS))
    assert op_run.run_id.encode() in page.content and foreign_run.run_id.encode() in page.content
    response = post(client, act_url(foreign_run), {"action": "pause"})
    assert messages_of(response) == [f"Run {foreign_run.run_id}: paused"]


def test_staff_without_a_membership_see_no_runs(operator, op_run):
    from governance.models import User

    stranger = User.objects.create_user("stranger", password="pw-for-tests")
    client = console(stranger)
    assert client.get(reverse(RUNS)).status_code == 403
    assert client.get(change_url(op_run)).status_code in (403, 404)
    index = client.get(reverse("admin:index"))
    assert b"/admin/automations/run/" not in index.content


# --- Large tables --------------------------------------------------------------------------------


def _counts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize("changelist", [RUNS, "admin:automations_lifecycleevent_changelist"])
def test_large_lists_cost_the_same_queries_and_never_count_the_table(
    operator, django_assert_max_num_queries, changelist
):
    actor = actor_for(operator)
    client = console(operator)
    make_run(actor, status=RunStatus.RUNNING)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(changelist)).status_code == 200
    for _ in range(24):
        make_run(actor, status=RunStatus.RUNNING)
    with django_assert_max_num_queries(len(few)), CaptureQueriesContext(connection) as many:
        assert client.get(reverse(changelist)).status_code == 200
    assert len(many) == len(few)
    counts = _counts(many.captured_queries)
    assert counts, "the page count is bounded, not skipped"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_pages_say_more_than_instead_of_a_total(operator, monkeypatch):
    from django.contrib import admin

    actor = actor_for(operator)
    runs = [make_run(actor, status=RunStatus.RUNNING) for _ in range(5)]
    monkeypatch.setattr(admin.site._registry[Run], "list_per_page", 2)
    client = console(operator)
    first = client.get(reverse(RUNS))
    assert b"more than 2 runs" in first.content
    assert b"?p=2" in first.content
    assert b'class="showall"' not in first.content
    assert b"more than 2 results" in first.content  # the search bar's line, not a count
    last = client.get(reverse(RUNS), {"p": "3"})
    assert b"5 runs" in last.content
    assert runs[0].run_id.encode() in last.content  # oldest last
    assert client.get(reverse(RUNS), {"p": "9"}).status_code in (200, 302)


# --- The run page ------------------------------------------------------------------------------


def test_run_page_shows_graph_nodes_outputs_gate_history_and_timeline(
    operator, reviewer, django_assert_max_num_queries
):
    run = awaiting(actor_for(operator))
    RunNode.objects.filter(run=run, node_id="draft").update(
        output=output(summary="<script>alert('x')</script>")
    )
    gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="Looks right")
    client = console(operator)
    with django_assert_max_num_queries(10):
        page = client.get(change_url(run))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<svg class="fg-graph"' in html
    assert 'data-node-id="approval" data-state="completed"' in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert 'data-decision="approve"' in html
    assert "rita-reviewer (human) via API" in html and "Looks right" in html
    assert 'data-event="approval_gate_opened"' in html
    assert 'data-event="approval_gate_decided"' in html
    # Approved, the run is queued again: only what the state machine allows a queued run.
    for name in ("pause", "cancel"):
        assert f'data-action="{name}"' in html
    for name in ("resume", "recover"):
        assert f'data-action="{name}"' not in html


def test_run_page_marks_the_gate_under_review(operator):
    run = awaiting(actor_for(operator))
    page = console(operator).get(change_url(run))
    html = page.content.decode()
    assert 'data-node-id="approval" data-state="awaiting_approval"' in html
    assert "Awaiting approval at <strong>approval</strong>" in html


def test_run_page_query_count_does_not_grow_with_the_run(operator, django_assert_max_num_queries):
    actor = actor_for(operator)
    small = make_run(actor, status=RunStatus.RUNNING)
    big = make_run(actor, status=RunStatus.RUNNING)
    LifecycleEvent.objects.bulk_create(
        [LifecycleEvent(run=big, event="node_started", reason=str(n)) for n in range(300)]
    )
    client = console(operator)
    with CaptureQueriesContext(connection) as few:
        client.get(change_url(small))
    with django_assert_max_num_queries(len(few)):
        page = client.get(change_url(big))
    assert page.content.count(b'class="fg-event"') == 200
    assert b"all of this run&#x27;s events" in page.content or b"all of this run" in page.content


# --- Automations -------------------------------------------------------------------------------


@pytest.fixture
def automation(operator, op_run) -> Automation:
    return op_run.automation


def test_automation_pause_and_resume_with_its_runs(operator, automation, op_run):
    client = console(operator)
    response = bulk(client, AUTOMATIONS, "pause", [automation.pk], reason="incident")
    assert messages_of(response) == ["Automation basic: paused (1 run(s) paused)"]
    automation.refresh_from_db()
    op_run.refresh_from_db()
    assert (automation.status, op_run.status) == (AutomationStatus.PAUSED, RunStatus.PAUSED)
    paused = AuditEvent.objects.get(event_type="automation.governance.paused")
    assert (paused.actor_id, paused.payload["reason"]) == ("otto-operator", "incident")

    response = post(client, act_url(automation), {"action": "resume", "resume_runs": "on"})
    assert messages_of(response) == ["Automation basic: active, 1 run(s) resumed"]
    automation.refresh_from_db()
    op_run.refresh_from_db()
    assert (automation.status, op_run.status) == (AutomationStatus.ACTIVE, RunStatus.QUEUED)
    resumed = AuditEvent.objects.get(event_type="automation.governance.resumed")
    assert resumed.actor_id == "otto-operator"


def test_run_now_from_the_automation_page(operator, automation, no_broker):
    response = post(console(operator), act_url(automation), {"action": "run_now"})
    run = Run.objects.filter(automation=automation).latest("id")
    assert messages_of(response) == [f"Automation basic: started {run.run_id}"]
    assert run.requested_by == operator.user
    assert AuditEvent.objects.filter(
        event_type="automation.run_started", payload__runID=run.run_id, actor_id="otto-operator"
    ).exists()


def test_run_now_of_a_paused_automation_is_refused(operator, automation):
    Automation.objects.filter(pk=automation.pk).update(status=AutomationStatus.PAUSED)
    before = Run.objects.count()
    response = bulk(console(operator), AUTOMATIONS, "run_now", [automation.pk])
    assert messages_of(response) == [
        "Automation basic: Automation is paused; only active automations start runs"
    ]
    assert Run.objects.count() == before


def test_automation_page_shows_status_graph_and_grants(operator, automation):
    page = console(operator).get(change_url(automation))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<svg class="fg-graph"' in html and 'data-node-id="review"' in html
    assert "No grants" in html
    for name in ("pause", "resume", "run_now"):
        assert f'data-action="{name}"' in html


def test_grants_go_through_the_audited_services(admin, operator, automation):
    client = console(admin)
    grants = reverse("admin:automations_automation_grants", args=[automation.pk])
    response = post(
        client, grants, {"principal": "user", "grantee": "otto-operator", "permission": "review"}
    )
    assert messages_of(response) == ["Automation basic: granted review to user otto-operator"]
    row = AutomationUserObjectPermission.objects.get(user=operator.user)
    assert row.permission.codename == "review_automation"
    assert f'data-grant-id="u{row.pk}"'.encode() in client.get(change_url(automation)).content
    response = post(client, grants, {"revoke": f"u{row.pk}"})
    assert messages_of(response) == [f"Automation basic: revoked u{row.pk}"]
    assert not AutomationUserObjectPermission.objects.exists()
    events = AuditEvent.objects.filter(event_type__startswith="automation.grant.").order_by("seq")
    assert [(e.event_type, e.actor_id) for e in events] == [
        ("automation.grant.added", "ada-admin"),
        ("automation.grant.revoked", "ada-admin"),
    ]


def test_grant_refusals_are_messages(admin, operator, outsider, automation, make_member):
    other = make_member("acme/ops", "olga-operator", role=Role.OPERATOR)
    grants = reverse("admin:automations_automation_grants", args=[automation.pk])
    # An operator who does not own the automation may not manage its grants (403, audited).
    response = post(
        console(other), grants, {"principal": "user", "grantee": "vera", "permission": "view"}
    )
    assert messages_of(response) == ["Automation basic: Automation access denied"]
    # A workspace admin naming someone outside the workspace, or an unknown permission: 400s.
    client = console(admin)
    response = post(
        client, grants, {"principal": "user", "grantee": "oscar-outsider", "permission": "view"}
    )
    assert messages_of(response) == [
        "Automation basic: No member named 'oscar-outsider' in this workspace"
    ]
    response = post(
        client, grants, {"principal": "user", "grantee": "otto-operator", "permission": "root"}
    )
    assert "permission must be one of" in messages_of(response)[0]
    response = post(client, grants, {"revoke": "u999999"})
    assert messages_of(response) == ["Automation basic: Grant not found"]
    assert not AutomationUserObjectPermission.objects.exists()
    # Another workspace's admin does not find the automation at all.
    assert console(outsider).post(grants, {"revoke": "u1"}).status_code == 404


def test_automations_are_scoped_like_runs(operator, automation, foreign_run):
    client = console(operator)
    page = client.get(reverse(AUTOMATIONS))
    assert b"basic" in page.content and b"foreign" not in page.content
    assert client.get(change_url(foreign_run.automation)).status_code == 404
    assert client.post(act_url(foreign_run.automation), {"action": "pause"}).status_code == 404
    bulk(client, AUTOMATIONS, "pause", [foreign_run.automation.pk])
    foreign_run.automation.refresh_from_db()
    assert foreign_run.automation.status == AutomationStatus.ACTIVE


def test_node_state_values_shown_are_the_run_nodes(operator, op_run):
    RunNode.objects.filter(run=op_run, node_id="draft").update(state=NodeState.FAILED)
    html = console(operator).get(change_url(op_run)).content.decode()
    assert '<tr data-node-id="draft" data-state="failed">' in html


@pytest.mark.parametrize("changelist", [AUTOMATIONS, "admin:governance_membership_changelist"])
def test_small_lists_cost_the_same_queries_whatever_their_length(
    operator, make_member, changelist, django_assert_max_num_queries
):
    actor = actor_for(operator)
    client = console(operator)
    make_run(actor, automation_id="first", status=RunStatus.RUNNING)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(changelist)).status_code == 200
    first = len(few)
    for n in range(12):
        make_run(actor, automation_id=f"more-{n}", status=RunStatus.RUNNING)
        make_member("acme/ops", f"member-{n}", role=Role.VIEWER)
    with django_assert_max_num_queries(first):
        page = client.get(reverse(changelist))
    assert page.content.count(b'<th class="field-') == 13  # one row each: 1 + 12
