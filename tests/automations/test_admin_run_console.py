"""The run-facing half of the operator's console (issue 16, item 2): run pages by run id, the
actions the run state machine allows with a confirmation step for destructive ones, node
retry / requeue / continue and repair through the API's services (audited, with the reason),
the live fragments, the run list's columns, prefix search and query count, and the tenant
boundary on every new URL."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from automations.admin_run_page import offered_actions
from automations.models import Automation, NodeState, Run, RunNode, RunStatus
from automations.runs.transitions import Cause, operator_actions_allowed
from governance.models import AuditEvent
from tests.factories import actor_for, awaiting, make_run, make_running, output
from tests.support.admin import change_url, console, messages_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RUNS = "admin:automations_run_changelist"
RUN_BUTTONS = ("pause", "resume", "cancel", "recover")
SECONDS = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def run_url(name: str, run: Run, *extra: str) -> str:
    return reverse(f"admin:automations_run_{name}", args=[run.run_id, *extra])


def act(client, run: Run, **data):
    return client.post(run_url("act", run), data, follow=True)


def audit(run: Run, verb: str) -> AuditEvent:
    return AuditEvent.objects.get(event_type=f"automation.run.{verb}", payload__runID=run.run_id)


def done(run: Run, *node_ids: str) -> None:
    RunNode.objects.filter(run=run, node_id__in=node_ids).update(
        state=NodeState.COMPLETED, attempts=1, output=output()
    )


@pytest.fixture
def paused_run(operator) -> Run:
    run = make_run(actor_for(operator), status=RunStatus.PAUSED)
    done(run, "draft", "review")
    return run


@pytest.fixture
def foreign_run(outsider) -> Run:
    return make_run(actor_for(outsider), status=RunStatus.PAUSED, automation_id="foreign")


# --- Run URLs by run id ---------------------------------------------------------------------


def test_the_run_page_is_addressed_by_run_id_and_integer_urls_redirect(operator, paused_run):
    client = console(operator)
    page = client.get(f"/admin/automations/run/{paused_run.run_id}/change/")
    assert page.status_code == 200
    assert paused_run.run_id.encode() in page.content
    old = client.get(f"/admin/automations/run/{paused_run.pk}/change/")
    assert old.status_code == 301
    assert old["Location"] == change_url(paused_run)
    assert client.get("/admin/automations/run/run-nosuchrun/change/").status_code == 404
    # The list links each row by run id.
    listing = client.get(reverse(RUNS)).content.decode()
    assert f'href="/admin/automations/run/{paused_run.run_id}/change/"' in listing


def test_another_workspaces_run_is_missing_on_every_run_url(operator, paused_run, foreign_run):
    client = console(operator)
    for url in (
        change_url(foreign_run),
        f"/admin/automations/run/{foreign_run.pk}/change/",
        run_url("live", foreign_run),
        run_url("repair", foreign_run, "draft"),
    ):
        assert client.get(url).status_code == 404, url
    for data in ({"action": "cancel"}, {"action": "retry", "node_id": "draft"}):
        assert client.post(run_url("act", foreign_run), data).status_code == 404
        assert (
            client.post(run_url("act", foreign_run), {**data, "confirmed": "yes"}).status_code
            == 404
        )
    assert client.post(run_url("repair", foreign_run, "draft"), {"prompt": "x"}).status_code == 404
    foreign_run.refresh_from_db()
    assert (foreign_run.status, foreign_run.version) == (RunStatus.PAUSED, 1)
    assert (
        not AuditEvent.objects.filter(payload__runID=foreign_run.run_id)
        .exclude(event_type="automation.run_started")
        .exists()
    )


def test_a_viewer_sees_the_run_page_but_its_actions_are_refused_and_audited(viewer, paused_run):
    client = console(viewer)
    assert client.get(change_url(paused_run)).status_code == 200
    response = act(client, paused_run, action="retry", node_id="draft", confirmed="yes")
    assert messages_of(response) == [f"Run {paused_run.run_id}: Automation access denied"]
    response = client.post(
        run_url("repair", paused_run, "draft"), {"prompt": "Other", "reason": ""}, follow=True
    )
    assert messages_of(response) == [f"Run {paused_run.run_id}: Automation access denied"]
    denials = AuditEvent.objects.filter(event_type="automation.governance.denied")
    assert [d.payload["actor"]["source"] for d in denials] == ["admin", "admin"]
    paused_run.refresh_from_db()
    assert paused_run.version == 1


# --- Actions by state -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in RunStatus.values if s != RunStatus.PAUSING])
def test_run_buttons_are_the_ones_the_state_machine_allows(operator, status):
    run = make_run(actor_for(operator), status=status)
    html = console(operator).get(change_url(run)).content.decode()
    shown = {name for name in RUN_BUTTONS if f'data-action="{name}"' in html}
    allowed = {c.value for c in operator_actions_allowed(status)} & set(RUN_BUTTONS)
    if status == RunStatus.COMPLETED:
        allowed.discard("recover")  # no blocked node: recover would be refused
    assert shown == allowed


def test_a_completed_run_offers_no_run_action_but_node_resets(operator):
    run = make_run(actor_for(operator), status=RunStatus.COMPLETED)
    html = console(operator).get(change_url(run)).content.decode()
    assert not any(f'data-action="{name}"' in html for name in RUN_BUTTONS)
    assert 'data-testid="no-run-actions"' in html
    assert 'data-node-action="retry"' in html and 'data-node-action="repair"' in html
    assert 'data-node-action="continue"' not in html  # no node is blocked


def test_recover_and_continue_are_offered_on_blocked_evidence(operator):
    run = make_run(
        actor_for(operator),
        status=RunStatus.COMPLETED,
        nodes={"review": (NodeState.BLOCKED, 1, output("blocked"))},
    )
    allowed, blocked = offered_actions(run, list(run.nodes.all()))
    assert Cause.RECOVER in allowed and blocked == {"review"}
    html = console(operator).get(change_url(run)).content.decode()
    assert 'data-action="recover"' in html
    row = html.split('<tr data-node-id="review"', 1)[1].split("</tr>", 1)[0]
    assert 'data-node-action="continue"' in row
    other = html.split('<tr data-node-id="draft"', 1)[1].split("</tr>", 1)[0]
    assert 'data-node-action="continue"' not in other


def test_a_running_run_offers_no_node_reset(operator):
    run = make_run(actor_for(operator), status=RunStatus.QUEUED)
    make_running(run)
    html = console(operator).get(change_url(run)).content.decode()
    assert "data-node-action" not in html
    assert 'data-action="pause"' in html and 'data-action="cancel"' in html


# --- Confirmation and the services -------------------------------------------------------------


def test_cancel_asks_first_and_then_cancels_with_the_reason_audited(operator, paused_run):
    client = console(operator)
    asked = client.post(run_url("act", paused_run), {"action": "cancel", "reason": "wrong data"})
    assert asked.status_code == 200
    html = asked.content.decode()
    assert 'data-testid="confirm-action"' in html and "cannot be resumed" in html
    assert 'value="wrong data"' in html  # the reason is carried to the confirmation
    paused_run.refresh_from_db()
    assert paused_run.status == RunStatus.PAUSED
    assert not AuditEvent.objects.filter(event_type="automation.run.cancelled").exists()

    response = act(client, paused_run, action="cancel", reason="wrong data", confirmed="yes")
    assert messages_of(response) == [f"Run {paused_run.run_id}: cancelled"]
    paused_run.refresh_from_db()
    assert paused_run.status == RunStatus.CANCELLED
    event = audit(paused_run, "cancelled")
    assert (event.actor_id, event.payload["reason"]) == ("otto-operator", "wrong data")
    assert event.payload["actor"]["source"] == "admin"


def test_an_action_the_state_no_longer_allows_goes_to_the_service_and_is_refused(operator):
    run = make_run(actor_for(operator), status=RunStatus.COMPLETED)
    response = act(console(operator), run, action="recover")  # a stale page's button
    assert messages_of(response) == [f"Run {run.run_id}: Run is not recoverable"]
    run.refresh_from_db()
    assert (run.status, run.version) == (RunStatus.COMPLETED, 1)


@pytest.mark.parametrize(
    ("action", "verb"), [("retry", "task_retried"), ("requeue", "task_requeued")]
)
def test_node_reset_shows_its_preview_then_resets_through_the_service(
    operator, paused_run, action, verb
):
    client = console(operator)
    asked = client.post(
        run_url("act", paused_run), {"action": action, "node_id": "review", "reason": "flaky"}
    )
    html = asked.content.decode()
    assert 'data-testid="reset-preview"' in html
    resets = re.findall(r'data-reset-node="([^"]+)"', html)
    assert resets == ["approval", "review"]
    assert re.findall(r'data-cleared-output="([^"]+)"', html) == ["review"]
    assert RunNode.objects.get(run=paused_run, node_id="review").output is not None

    response = act(
        client, paused_run, action=action, node_id="review", reason="flaky", confirmed="yes"
    )
    [message] = messages_of(response)
    assert message.startswith(f"Run {paused_run.run_id}: ") and "review" in message
    paused_run.refresh_from_db()
    assert paused_run.status == RunStatus.QUEUED
    review = RunNode.objects.get(run=paused_run, node_id="review")
    assert (review.state, review.output) == (NodeState.PENDING, None)
    assert RunNode.objects.get(run=paused_run, node_id="draft").output is not None  # upstream kept
    event = audit(paused_run, verb)
    assert (event.payload["nodeID"], event.payload["reason"]) == ("review", "flaky")
    assert event.payload["resetNodes"] == resets
    assert event.payload["actor"]["source"] == "admin"


def test_continue_a_blocked_node(operator):
    run = make_run(
        actor_for(operator),
        status=RunStatus.BLOCKED,
        nodes={"review": (NodeState.BLOCKED, 1, output("blocked"))},
    )
    client = console(operator)
    assert (
        b'data-testid="confirm-action"'
        in client.post(run_url("act", run), {"action": "continue", "node_id": "review"}).content
    )
    act(client, run, action="continue", node_id="review", reason="unblocked", confirmed="yes")
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert audit(run, "task_continued").payload["reason"] == "unblocked"


def test_a_node_action_needs_its_node(operator, paused_run):
    response = act(console(operator), paused_run, action="retry", confirmed="yes")
    assert messages_of(response) == ["Unknown action or invalid input."]
    response = act(console(operator), paused_run, action="retry", node_id="nope")
    assert messages_of(response) == [f"Run {paused_run.run_id}: Node not found"]


# --- Repair -----------------------------------------------------------------------------------


def test_repair_page_shows_the_node_and_the_reset_preview(operator, paused_run):
    page = console(operator).get(run_url("repair", paused_run, "draft"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Write draft v1" in html  # the node's prompt on the live automation
    assert "template-a" in html
    assert re.findall(r'data-reset-node="([^"]+)"', html) == [
        "approval",
        "draft",
        "review",
    ]
    assert re.findall(r'data-cleared-output="([^"]+)"', html) == ["draft", "review"]
    assert "Repair and reset 3 node(s)" in html


def test_repair_edits_the_prompt_through_the_service_audited_with_the_reason(operator, paused_run):
    client = console(operator)
    automation = Automation.objects.get(pk=paused_run.automation_id)
    response = client.post(
        run_url("repair", paused_run, "review"),
        {
            "prompt": "Review against the style guide",
            "template_id": "template-a",
            "model_policy": '{"model": "echo-1", "provider": "echo"}',
            "reason": "bad review",
        },
        follow=True,
    )
    [message] = messages_of(response)
    version = automation.version + 1
    assert (
        message
        == f"Run {paused_run.run_id}: repaired review (automation version {version}), queued"
    )
    automation.refresh_from_db()
    review = next(n for n in automation.flow["nodes"] if n["node_id"] == "review")
    assert review["metadata"]["builder"]["prompt"] == "Review against the style guide"
    event = audit(paused_run, "repaired")
    assert event.payload["automationChanged"] == ["flow"]  # template and policy unchanged
    assert (event.payload["nodeID"], event.payload["reason"]) == ("review", "bad review")
    assert event.payload["actor"]["source"] == "admin"


def test_repair_without_changes_only_resets(operator, paused_run):
    client = console(operator)
    form = client.get(run_url("repair", paused_run, "review")).context["form"]
    version = Automation.objects.get(pk=paused_run.automation_id).version
    data = {name: form[name].value() or "" for name in ("prompt", "template_id", "model_policy")}
    client.post(run_url("repair", paused_run, "review"), {**data, "reason": ""}, follow=True)
    assert Automation.objects.get(pk=paused_run.automation_id).version == version
    assert audit(paused_run, "repaired").payload["automationChanged"] == []


def test_repair_input_errors_are_shown_on_the_form(operator, paused_run):
    page = console(operator).post(
        run_url("repair", paused_run, "review"), {"prompt": "x", "model_policy": "[1, 2]"}
    )
    assert page.status_code == 200
    assert b"The model policy is a JSON object." in page.content
    paused_run.refresh_from_db()
    assert paused_run.version == 1


# --- The run page's rows ------------------------------------------------------------------------


def test_timeline_rows_name_their_node_and_times_have_seconds(operator):
    run = awaiting(actor_for(operator))
    html = console(operator).get(change_url(run)).content
    assert b'class="fg-event" data-event="approval_gate_opened" data-node-id="approval"' in html
    assert b'data-event="run_queued" data-node-id=""' in html
    assert len(SECONDS.findall(html)) >= 4
    assert b"Close</a>" not in html  # no stray button under the read-only fields
    events = console(operator).get(reverse("admin:automations_lifecycleevent_changelist"))
    assert b'<td class="field-node">approval</td>' in events.content
    assert SECONDS.search(events.content)


# --- Live fragments -------------------------------------------------------------------------------


def test_the_live_fragment_is_the_page_without_using_up_its_messages(operator, paused_run):
    client = console(operator)
    client.post(run_url("act", paused_run), {"action": "resume"})  # its message not shown yet
    live = client.get(run_url("live", paused_run))
    assert live.status_code == 200
    assert "no-store" in live["Cache-Control"]
    assert b'id="fg-run-summary" data-live-region' in live.content
    assert b'data-status="queued"' in live.content
    assert b"messagelist" not in live.content
    # The message is still there for the page the operator loads next.
    assert messages_of(client.get(change_url(paused_run))) == [f"Run {paused_run.run_id}: queued"]


def test_the_list_live_fragment_keeps_the_filters(operator, paused_run):
    other = make_run(actor_for(operator), status=RunStatus.RUNNING)
    client = console(operator)
    live = client.get(reverse("admin:automations_run_live_list"), {"status__exact": "paused"})
    assert live.status_code == 200
    assert f'id="fg-run-{paused_run.pk}-status"'.encode() in live.content
    assert f'id="fg-run-{other.pk}-status"'.encode() not in live.content


# --- The run list ---------------------------------------------------------------------------------


def test_list_columns_say_where_each_run_is_how_long_and_who_asked(operator):
    actor = actor_for(operator)
    gated = awaiting(actor)
    running = make_run(actor, status=RunStatus.QUEUED)
    make_running(running)
    Run.objects.filter(pk=running.pk).update(started_at=running.created_at)
    html = console(operator).get(reverse(RUNS)).content.decode()
    cell = 'class="fg-step" data-live-region data-status="">'
    assert f'id="fg-run-{gated.pk}-step" {cell}gate approval<' in html
    assert f'id="fg-run-{running.pk}-step" {cell}draft<' in html
    assert re.search(rf'id="fg-run-{running.pk}-duration"[^>]*>\d+s<', html)
    assert "otto-operator" in html
    for header in ("Now at", "Requested by", "Duration"):
        assert header in html


@pytest.mark.parametrize("term", ["{prefix}", "{bare}"])
def test_search_takes_any_prefix_of_a_run_id(operator, paused_run, foreign_run, term):
    actor = actor_for(operator)
    runs = [paused_run, *(make_run(actor, status=RunStatus.PAUSED) for _ in range(3))]
    target = runs[1]
    bare = target.run_id.removeprefix("run-")
    query = term.format(prefix=target.run_id[:12], bare=bare[:8])
    client = console(operator)
    assert listed(client, query) == {target.pk}
    assert listed(client, foreign_run.run_id) == set()  # another workspace's run: not found
    assert listed(client, "") == {r.pk for r in runs}


def test_search_with_text_no_run_id_could_have_finds_nothing(operator, paused_run):
    assert listed(console(operator), "%' OR 1=1 --") == set()
    assert listed(console(operator), "run-%") == set()  # LIKE wildcards are not wildcards


def listed(client, query: str) -> set[int]:
    html = client.get(reverse(RUNS), {"q": query}).content.decode()
    return {int(pk) for pk in re.findall(r'id="fg-run-(\d+)-status"', html)}


def test_the_list_costs_the_same_queries_whatever_the_runs_are_doing(
    operator, django_assert_max_num_queries
):
    actor = actor_for(operator)
    client = console(operator)
    awaiting(actor)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(RUNS)).status_code == 200
    for _ in range(6):
        awaiting(actor)
        running = make_run(actor, status=RunStatus.QUEUED)
        make_running(running)
        make_run(actor, status=RunStatus.COMPLETED)
    with django_assert_max_num_queries(len(few)):
        page = client.get(reverse(RUNS))
    assert page.content.count(b"gate approval<") == 7
    assert page.content.count(b'data-status="">draft<') == 6
