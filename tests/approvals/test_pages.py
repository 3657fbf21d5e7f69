"""The approval pages (`approvals.pages`): pending list, gate page, decision form, login.

Runs reach their gate through the engine (`tests.factories.review_gate`), and every
decision goes through the real decision service; the browser side is
tests/browser/test_approval_pages.py.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from approvals.policy import MESSAGES, SELF_APPROVAL_FORBIDDEN
from automations import engine
from automations.models import NodeState, Run, RunStatus
from governance.models import AuditEvent, Role
from tests.factories import GOVERNED, HOSTILE, actor_for, review_gate
from tests.support.pages import page_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

C = NodeState.COMPLETED


def gate_url(gate) -> str:
    return reverse("approval_pages:gate", args=[gate.pk])


def signed_in(member) -> Client:
    member.user.refresh_from_db()  # make_member resets the password, and the session hash
    client = Client()
    client.force_login(member.user)
    return client


@pytest.fixture
def requester(operator):
    return actor_for(operator)


# --- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/approvals/", "/approvals/gate-123/"])
def test_anonymous_readers_are_sent_to_the_login_page_and_back(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_login_form_signs_a_human_in_and_returns_to_the_page(client, reviewer, requester):
    gate = review_gate(requester)
    page = client.get(f"/accounts/login/?next={gate_url(gate)}")
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    response = client.post(
        "/accounts/login/",
        {"username": "rita-reviewer", "password": "pw-for-tests", "next": gate_url(gate)},
    )
    assert response.status_code == 302 and response["Location"] == gate_url(gate)
    assert client.get(gate_url(gate)).status_code == 200


def test_login_refuses_a_wrong_password(client, reviewer):
    response = client.post("/accounts/login/", {"username": "rita-reviewer", "password": "no"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in page_text(response)


def test_logout_is_a_post_and_ends_the_session(reviewer):
    client = signed_in(reviewer)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/approvals/").status_code == 302


# --- pending list -----------------------------------------------------------------------------


def test_pending_lists_decidable_gates_across_workspaces(make_member, reviewer, requester):
    ours = review_gate(requester)
    other_ws = make_member("acme/finance", "fin-operator", role=Role.OPERATOR)
    make_member("acme/finance", "rita-reviewer", role=Role.REVIEWER)
    theirs = review_gate(actor_for(other_ws), automation_id="ledger")
    foreign = review_gate(
        actor_for(make_member("globex/ops", "globex-op", role=Role.OPERATOR)),
        automation_id="globex",
    )
    elevated = review_gate(requester, automation_id="elevated", policy=GOVERNED)

    response = signed_in(reviewer).get("/approvals/")
    html = response.content.decode()
    assert response.status_code == 200
    assert gate_url(ours) in html and gate_url(theirs) in html
    assert gate_url(foreign) not in html  # not a member there
    assert gate_url(elevated) not in html  # needs authority the reviewer lacks
    text = page_text(response)
    assert "acme/ops" in text and "acme/finance" in text
    assert "waiting" in text and "expires in 6 days" in text
    # Newest first.
    assert html.index(gate_url(theirs)) < html.index(gate_url(ours))


def test_pending_list_query_count_does_not_grow_with_gates(make_member, reviewer, requester):
    client = signed_in(reviewer)
    review_gate(requester, automation_id="first")
    with CaptureQueriesContext(connection) as one:
        assert client.get("/approvals/").status_code == 200
    for n in range(4):
        review_gate(requester, automation_id=f"more-{n}")
    with CaptureQueriesContext(connection) as five:
        response = client.get("/approvals/")
    assert response.content.decode().count('class="pending-item"') == 5
    assert len(five) == len(one)
    # session + user, memberships, clearances of the one workspace, the gates.
    assert len(five) <= 5


def test_pending_list_is_empty_for_a_viewer_and_after_a_decision(viewer, reviewer, requester):
    gate = review_gate(requester)
    assert "Nothing is waiting for you" in page_text(signed_in(viewer).get("/approvals/"))
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="approve", source="api")
    assert "Nothing is waiting for you" in page_text(signed_in(reviewer).get("/approvals/"))


# --- the gate page ----------------------------------------------------------------------------


def test_gate_page_shows_run_graph_outputs_instructions_policy_and_form(make_member, requester):
    reviewer = make_member("acme/ops", "rita-reviewer", role=Role.REVIEWER, clearances=["internal"])
    gate = review_gate(
        requester,
        decisions=["approve", "rework"],
        policy={"risk_tier": "external_send", "data_classes": ["internal"]},
        instructions="Check tone and the three sources",
    )
    response = signed_in(reviewer).get(gate_url(gate))
    assert response.status_code == 200
    html, text = response.content.decode(), page_text(response)
    assert "Newsletter: " in text and gate.run.run_id in text and "acme/ops" in text
    assert "requested by otto-operator" in text.lower() or "otto-operator" in text
    # The graph: every node with its state, the open gate marked as awaiting approval.
    assert 'data-node-id="research" data-state="completed"' in html
    assert 'data-node-id="review" data-state="awaiting_approval"' in html
    assert 'data-node-id="publish" data-state="pending"' in html
    # The outputs under review, the instructions and the policy.
    assert "Drafted the issue" in text and "Draft text for review" in text
    assert "Found three sources" not in text  # research is not a direct upstream of the gate
    assert "Check tone and the three sources" in text
    assert "Risk tier External send" in text and "Data classes Internal" in text
    assert "Reviewer eligibility None" in text
    assert "(in 6 days, 23 hours); then: cancel" in text
    # The form offers exactly the gate's decisions, and names the opening it decides.
    assert re.findall(r'name="decision" value="(\w+)"', html) == ["approve", "rework"]
    assert f'name="approval_request_id" value="{gate.pk}"' in html
    assert "csrfmiddlewaretoken" in html
    assert "Your role in this workspace (reviewer) includes the review permission." in text
    assert "You are cleared for every data class on this gate (internal)." in text


def test_output_markup_is_shown_as_text(reviewer, requester):
    gate = review_gate(requester, text=HOSTILE)
    html = signed_in(reviewer).get(gate_url(gate)).content.decode()
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html


def test_pages_carry_a_content_security_policy_and_no_inline_script_or_style(reviewer, requester):
    gate = review_gate(requester)
    client = signed_in(reviewer)
    for response in (client.get(gate_url(gate)), client.get("/approvals/")):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        html = response.content.decode()
        assert "<style" not in html and " style=" not in html
        # Scripts only as files of this site (the gate page's live status poller).
        assert re.findall(r"<script[^>]*>", html) in (
            [],
            ['<script src="/static/flowgate/gate-live.js" defer>'],
        )


def test_every_page_carries_the_policy_the_api_docs_too(reviewer):
    client = signed_in(reviewer)
    assert "script-src 'self'" in client.get("/api/docs/")["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/admin/login/")["Content-Security-Policy"]
    assert "script-src 'self'" in client.get("/accounts/login/")["Content-Security-Policy"]


def test_a_gate_of_another_workspace_is_the_same_404_as_no_gate(outsider, requester):
    gate = review_gate(requester)
    client = signed_in(outsider)
    foreign, missing = client.get(gate_url(gate)), client.get("/approvals/gate-nope/")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    posted = client.post(
        gate_url(gate), {"approval_request_id": gate.pk, "decision": "approve", "reason": "x"}
    )
    assert posted.status_code == 404
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.OPEN


def test_a_viewer_sees_the_gate_and_why_they_may_not_decide(viewer, requester):
    gate = review_gate(requester)
    response = signed_in(viewer).get(gate_url(gate))
    text = page_text(response)
    assert response.status_code == 200
    assert "You may not decide this gate." in text
    assert "your role (viewer) does not include review" in text
    assert 'name="decision"' not in response.content.decode()


def test_a_reviewer_without_authority_is_told_what_is_missing(reviewer, requester):
    gate = review_gate(requester, policy=GOVERNED)
    text = page_text(signed_in(reviewer).get(gate_url(gate)))
    assert MESSAGES["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED"] in text
    assert "elevated review authority" in text
    assert "clearance for the data class financial_record" in text


def test_get_never_writes(reviewer, requester):
    gate = review_gate(requester)
    audit = AuditEvent.objects.count()
    client = signed_in(reviewer)
    with CaptureQueriesContext(connection) as queries:
        client.get(gate_url(gate))
        client.get("/approvals/")
    writes = [q["sql"] for q in queries if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.I)]
    assert writes == []
    assert AuditEvent.objects.count() == audit


def test_gate_page_queries_are_bounded(reviewer, requester):
    gate = review_gate(requester, policy={"data_classes": ["internal"]})
    client = signed_in(reviewer)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(gate_url(gate)).status_code == 200
    # session, user, gate, membership, permissions (view, then review), nodes, decision,
    # clearances: a fixed number whatever the flow's size or the outputs' length.
    assert len(queries) <= 14


# --- deciding ---------------------------------------------------------------------------------


def decide(client, gate, decision, reason="", request_id=None):
    return client.post(
        gate_url(gate),
        {
            "approval_request_id": request_id or gate.pk,
            "decision": decision,
            "reason": reason,
        },
    )


def test_approve_with_a_reason_applies_through_the_service_and_shows_the_outcome(
    reviewer, requester
):
    gate = review_gate(requester)
    client = signed_in(reviewer)
    response = decide(client, gate, "approve", "Reads well")
    assert response.status_code == 302 and response["Location"] == gate_url(gate)
    record = GateDecision.objects.get(gate=gate, settles=True)
    assert (record.decision, record.source, record.reason) == ("approve", "page", "Reads well")
    assert record.decided_by == reviewer.user
    assert Run.objects.get(pk=gate.run.pk).status == RunStatus.QUEUED
    event = AuditEvent.objects.get(event_type="automation.governance.gate_decided")
    assert event.payload["decidedBy"]["source"] == "page"

    page = client.get(gate_url(gate))
    text = page_text(page)
    assert "You approved this gate." in text
    assert "Approved by rita-reviewer via approval page at" in text
    assert "Reason: Reads well" in text
    assert "This gate has been decided." in text
    assert 'name="decision"' not in page.content.decode()


def test_rework_without_a_reason_is_refused_in_the_page(reviewer, requester):
    gate = review_gate(requester)
    audit = AuditEvent.objects.count()
    response = decide(signed_in(reviewer), gate, "rework", "   ")
    assert response.status_code == 400
    assert "A reason is required to send work back for rework." in page_text(response)
    assert not GateDecision.objects.filter(gate=gate).exists()
    assert AuditEvent.objects.count() == audit  # refused before the service


def test_rework_with_a_reason_reopens_the_gate_and_the_old_page_links_to_the_new_round(
    reviewer, requester
):
    gate = review_gate(requester)
    client = signed_in(reviewer)
    assert decide(client, gate, "rework", "Too long").status_code == 302
    run = Run.objects.get(pk=gate.run.pk)
    make_run_reach_gate_again(run)
    newer = Gate.objects.get(run=run, status=GateStatus.OPEN)
    assert newer.round == 2
    text = page_text(client.get(gate_url(gate)))
    assert "Sent back for rework by rita-reviewer" in text
    assert "This gate opened again: decide round 2" in text
    # The stale page's form cannot decide the new opening.
    stale = decide(client, newer, "approve", "ok", request_id=gate.pk)
    assert stale.status_code == 409
    assert "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED" in page_text(stale)
    assert Gate.objects.get(pk=newer.pk).status == GateStatus.OPEN


def make_run_reach_gate_again(run):
    """Complete the reset nodes as a worker would, then let the engine reopen the gate."""
    from automations.models import RunNode

    RunNode.objects.filter(run=run, node_id="draft").update(
        state=C, attempts=1, output={"status": "completed", "summary": "Shorter draft"}
    )
    engine.run_advance(run.run_id)


def test_a_decision_the_gate_does_not_offer_is_refused(reviewer, requester):
    gate = review_gate(requester, decisions=["approve", "cancel"])
    response = decide(signed_in(reviewer), gate, "rework", "please")
    assert response.status_code == 400
    assert "This gate does not offer that decision." in page_text(response)
    assert not GateDecision.objects.filter(gate=gate).exists()


def test_self_approval_is_explained_then_refused_with_the_policy_reason(make_member):
    owner = make_member("acme/ops", "sam-requester", role=Role.ADMIN)
    gate = review_gate(actor_for(owner), policy={"risk_tier": "external_send"})
    client = signed_in(owner)
    page = client.get(gate_url(gate))
    html, text = page.content.decode(), page_text(page)
    assert f"Approve : {MESSAGES[SELF_APPROVAL_FORBIDDEN]}: you are the run" in text
    assert "(rule requester)" in text
    assert "risk tier external_send" in text
    assert re.search(r'value="approve" class="[^"]*" disabled', html)
    assert not re.search(r'value="rework" class="[^"]*" disabled', html)

    refused = decide(client, gate, "approve", "mine")
    assert refused.status_code == 403
    text = page_text(refused)
    assert f"Your decision was not applied. {MESSAGES[SELF_APPROVAL_FORBIDDEN]}" in text
    assert SELF_APPROVAL_FORBIDDEN in text
    denial = AuditEvent.objects.get(event_type="automation.governance.gate_decision_denied")
    assert denial.payload["code"] == SELF_APPROVAL_FORBIDDEN
    assert denial.payload["decidedBy"]["source"] == "page"
    # Rework by the requester is allowed.
    assert decide(client, gate, "rework", "I will fix it").status_code == 302


def test_a_lost_race_shows_the_winner(make_member, reviewer, requester):
    gate = review_gate(requester)
    other = make_member("acme/ops", "ron-reviewer", role=Role.REVIEWER)
    client = signed_in(reviewer)
    assert client.get(gate_url(gate)).status_code == 200  # the form is on screen ...
    gate_decide(actor=actor_for(other), run=gate.run, decision="cancel", reason="dup", source="api")
    late = decide(client, gate, "approve", "fine")  # ... and is posted after the other decision
    assert late.status_code == 409
    text = page_text(late)
    assert "Your decision was not applied. Run is not awaiting approval" in text
    assert "Cancelled by ron-reviewer via api at" in text
    assert GateDecision.objects.get(gate=gate, settles=True).decided_by == other.user


def test_an_expired_gate_takes_no_decision(reviewer, requester):
    gate = review_gate(requester)
    Gate.objects.filter(pk=gate.pk).update(expires_at=gate.requested_at)
    client = signed_in(reviewer)
    text = page_text(client.get(gate_url(gate)))
    assert "This gate expired before a decision was made." in text
    response = decide(client, gate, "approve", "late")
    assert response.status_code == 409
    assert "AUTOMATION_V2_GATE_EXPIRED" in page_text(response)


# --- decision first, cancel confirmation, decided gates, live status (issue 16) -------------


def test_what_to_judge_and_the_decision_come_before_the_run_metadata(reviewer, requester):
    gate = review_gate(requester, instructions="Check the tone")
    html = signed_in(reviewer).get(gate_url(gate)).content.decode()
    order = [
        html.index("Check the tone"),
        html.index('data-testid="under-review"'),
        html.index('data-testid="downstream-plan"'),
        html.index('data-testid="decision"'),
        html.index("About this run"),
        html.index('data-testid="flow-graph"'),
        html.index('data-testid="policy"'),
    ]
    assert order == sorted(order)


def test_cancel_needs_a_confirmation_checked_by_the_server(reviewer, requester):
    gate = review_gate(requester, decisions=["approve", "rework", "cancel"])
    client = signed_in(reviewer)
    audit = AuditEvent.objects.count()
    first = decide(client, gate, "cancel", "duplicate")
    assert first.status_code == 400
    assert "Cancelling ends the run and cannot be undone" in page_text(first)
    assert not GateDecision.objects.filter(gate=gate).exists()
    assert AuditEvent.objects.count() == audit
    assert Run.objects.get(pk=gate.run.pk).status == RunStatus.AWAITING_APPROVAL

    confirmed = client.post(
        gate_url(gate),
        {
            "approval_request_id": gate.pk,
            "decision": "cancel",
            "reason": "duplicate",
            "confirm_cancel": "on",
        },
    )
    assert confirmed.status_code == 302
    assert GateDecision.objects.get(gate=gate, settles=True).decision == "cancel"
    assert "You cancelled the run at this gate." in page_text(client.get(gate_url(gate)))


def test_a_decided_gate_shows_the_outcome_not_a_countdown(make_member, reviewer, requester):
    gate = review_gate(requester, policy={"risk_tier": "external_send"})
    waiting = review_gate(requester, automation_id="digest")
    client = signed_in(reviewer)
    assert decide(client, gate, "rework", "Too long").status_code == 302
    page = client.get(gate_url(gate))
    text, html = page_text(page), page.content.decode()
    assert "You sent this gate back for rework." in text
    assert "Waiting since" not in text and "Expires in" not in text and "(in 6 days" not in text
    assert "What was reviewed in round 1" in text and "Draft text for review" in text
    assert "Risk tier External send" in text and "external_send" not in text.replace("title", "")
    assert f'href="{gate_url(waiting)}"' in html and "Next pending gate" in text


def test_every_round_of_a_gate_links_to_the_others(reviewer, requester):
    gate = review_gate(requester)
    client = signed_in(reviewer)
    assert decide(client, gate, "rework", "Too long").status_code == 302
    make_run_reach_gate_again(Run.objects.get(pk=gate.run.pk))
    newer = Gate.objects.get(run=gate.run, status=GateStatus.OPEN)
    first, second = client.get(gate_url(gate)), client.get(gate_url(newer))
    assert f'href="{gate_url(newer)}">round 2 (open)' in first.content.decode()
    assert f'href="{gate_url(gate)}">round 1 (decided)' in second.content.decode()
    assert "Draft text for review" in page_text(first)  # the snapshot of round 1


def test_the_status_endpoint_follows_the_gate(outsider, make_member, reviewer, requester):
    gate = review_gate(requester)
    url = reverse("approval_pages:gate_status", args=[gate.pk])
    client = signed_in(reviewer)
    assert client.get(url).json() == {"state": "open", "gate_status": "open", "message": ""}
    assert signed_in(outsider).get(url).status_code == 404
    other = make_member("acme/ops", "ron-reviewer", role=Role.REVIEWER)
    gate_decide(actor=actor_for(other), run=gate.run, decision="approve", reason="ok", source="api")
    assert client.get(url).json() == {
        "state": "decided",
        "gate_status": "decided",
        "message": "Approved by ron-reviewer.",
    }
    expiring = review_gate(requester, automation_id="digest")
    Gate.objects.filter(pk=expiring.pk).update(expires_at=expiring.requested_at)
    status = client.get(reverse("approval_pages:gate_status", args=[expiring.pk])).json()
    assert status["state"] == "expired"
    Gate.objects.filter(pk=expiring.pk).update(
        status=GateStatus.SUPERSEDED, expires_at=gate.expires_at
    )
    status = client.get(reverse("approval_pages:gate_status", args=[expiring.pk])).json()
    assert status["state"] == "superseded" and "a newer round replaced it" in status["message"]
    paused = review_gate(requester, automation_id="weekly")
    Run.objects.filter(pk=paused.run.pk).update(status=RunStatus.PAUSED)
    paused_url = reverse("approval_pages:gate_status", args=[paused.pk])
    assert client.get(paused_url).json()["state"] == "run-paused"
    # The page renders the same state, so an unchanged gate never shows a live notice.
    assert 'data-state="run-paused"' in client.get(gate_url(paused)).content.decode()
