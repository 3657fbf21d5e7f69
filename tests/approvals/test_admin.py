"""Gates and gate decisions in the admin (approvals/admin.py, approvals/admin_decide.py): rows
read-only, scoped to the staff user's workspaces, lists in a constant number of queries without
counting the table; an open gate's page decides it through the decision service (source
`admin`), every policy rule applying, the result shown as an admin message."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from approvals.pages.forms import REASON_REQUIRED
from approvals.policy import AUTHORITY_DENIED, MESSAGES, SELF_APPROVAL_FORBIDDEN
from automations import engine
from automations.models import NodeState, Run, RunNode, RunStatus
from automations.runs.control import run_cancel
from governance.actors import Actor
from governance.errors import Conflict
from governance.models import AuditEvent, Role
from governance.services import clearances_set
from tests.factories import GOVERNED, actor_for, awaiting, output, review_gate
from tests.support.admin import change_url, console, messages_of, redirected_to
from tests.support.pages import page_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

GATES = "admin:approvals_gate_changelist"
DECISIONS = "admin:approvals_gatedecision_changelist"


@pytest.fixture
def decided(operator, reviewer) -> GateDecision:
    run = awaiting(actor_for(operator))
    gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="fine")
    return GateDecision.objects.select_related("gate").get(run=run)


@pytest.fixture
def foreign(outsider) -> Gate:
    run = awaiting(actor_for(outsider), automation_id="foreign")
    return Gate.objects.get(run=run)


def test_gates_and_decisions_are_read_only(operator, decided):
    client = console(operator)
    gate = decided.gate
    assert client.get(reverse("admin:approvals_gate_add")).status_code == 403
    page = client.get(change_url(gate))
    assert page.status_code == 200
    assert b"fine" in page.content and b"rita-reviewer" in page.content  # its decisions
    assert client.post(change_url(gate), {"status": "open"}).status_code == 403
    delete = reverse("admin:approvals_gatedecision_delete", args=[decided.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.post(change_url(decided), {"decision": "cancel"}).status_code == 403
    decided.refresh_from_db()
    assert decided.decision == "approve"


def test_gates_and_decisions_of_other_workspaces_are_invisible(
    operator, outsider, decided, foreign
):
    client = console(operator)
    gates = client.get(reverse(GATES))
    assert decided.gate_id.encode() in gates.content
    assert foreign.pk.encode() not in gates.content
    assert b"globex/ops" not in gates.content  # nor in the workspace filter
    assert client.get(change_url(foreign)).status_code == 404
    gate_decide(actor=actor_for(outsider), run=foreign.run, decision="cancel")
    theirs = GateDecision.objects.get(gate=foreign)
    assert foreign.pk.encode() not in client.get(reverse(DECISIONS)).content
    assert client.get(change_url(theirs)).status_code == 404


@pytest.mark.parametrize("changelist", [GATES, DECISIONS])
def test_lists_cost_the_same_queries_whatever_their_length(
    operator, reviewer, changelist, django_assert_max_num_queries
):
    client = console(operator)
    op, rev = actor_for(operator), actor_for(reviewer)
    gate_decide(actor=rev, run=awaiting(op, automation_id="a0"), decision="approve")
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse(changelist)).status_code == 200
    for n in range(1, 6):
        gate_decide(actor=rev, run=awaiting(op, automation_id=f"a{n}"), decision="approve")
    with django_assert_max_num_queries(len(few)), CaptureQueriesContext(connection) as many:
        page = client.get(reverse(changelist))
    assert page.content.count(b'<th class="field-') == 6  # one per row
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


# --- deciding from the gate page ----------------------------------------------------------------


def decide_url(gate) -> str:
    return reverse("admin:approvals_gate_decide", args=[gate.pk])


def decide(client, gate, decision: str, reason: str = ""):
    """Click a decision button on the gate page; follow back to the page with its messages."""
    return client.post(decide_url(gate), {"decision": decision, "reason": reason}, follow=True)


def button(html: str, decision: str) -> str:
    """The gate page's button for `decision` (its tag), to assert it is there and enabled."""
    found = re.search(rf'<button type="submit" name="decision" value="{decision}"[^>]*>', html)
    assert found, f"no {decision} button"
    return found.group(0)


def is_open(gate) -> bool:
    return Gate.objects.get(pk=gate.pk).status == GateStatus.OPEN


def denials(gate) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            event_type="automation.governance.gate_decision_denied", payload__gateID=gate.pk
        )
    )


@pytest.fixture
def requester(operator):
    return actor_for(operator)


def test_a_reviewer_approves_from_the_gate_page(reviewer, requester):
    gate = review_gate(requester)
    client = console(reviewer)
    page = client.get(change_url(gate))
    html = page.content.decode()
    assert page.status_code == 200
    assert "You may decide this gate." in page_text(page)
    assert f'action="{decide_url(gate)}"' in html and 'name="csrfmiddlewaretoken"' in html
    assert [button(html, d) for d in ("approve", "rework", "cancel")]
    assert "disabled" not in button(html, "approve")

    done = decide(client, gate, "approve", "Reads well")
    assert redirected_to(done) == change_url(gate)
    assert messages_of(done) == [f"Gate {gate}: approved"]
    record = GateDecision.objects.get(gate=gate)
    assert (record.decision, record.source, record.reason) == ("approve", "admin", "Reads well")
    assert record.decided_by == reviewer.user
    assert Run.objects.get(pk=gate.run_id).status == RunStatus.QUEUED
    audit = AuditEvent.objects.get(
        event_type="automation.governance.gate_decided", payload__gateID=gate.pk
    )
    assert audit.actor_id == "rita-reviewer"
    assert audit.payload["decidedBy"] == {
        "kind": "human",
        "actor_id": "rita-reviewer",
        "source": "admin",
    }
    # The page now says who decided, where and when, and offers no form.
    text = page_text(done)
    assert "Approved by rita-reviewer via Admin at" in text and "Reads well" in text
    assert "This gate has been decided." in text
    assert decide_url(gate) not in done.content.decode()


def test_rework_without_a_reason_is_refused_and_with_one_applied(reviewer, requester):
    gate = review_gate(requester)
    client = console(reviewer)
    audit = AuditEvent.objects.count()
    refused = decide(client, gate, "rework", "   ")
    assert messages_of(refused) == [f"Gate {gate}: {REASON_REQUIRED}"]
    assert is_open(gate) and not GateDecision.objects.filter(gate=gate).exists()
    assert AuditEvent.objects.count() == audit  # refused by the form: the service was not asked

    done = decide(client, gate, "rework", "Cite the sources")
    assert messages_of(done) == [f"Gate {gate}: sent back for rework"]
    record = GateDecision.objects.get(gate=gate)
    assert (record.decision, record.reason, record.source) == (
        "rework",
        "Cite the sources",
        "admin",
    )
    assert "Sent back for rework by rita-reviewer via Admin" in page_text(done)


def test_a_decision_the_gate_does_not_offer_is_refused(reviewer, requester):
    gate = review_gate(requester, decisions=["approve", "cancel"])
    client = console(reviewer)
    assert 'value="rework"' not in client.get(change_url(gate)).content.decode()
    for bad in ("rework", "delete", ""):
        response = decide(client, gate, bad, "because")
        assert response.status_code == 200
        assert messages_of(response)[0].startswith(f"Gate {gate}: ")
    assert is_open(gate)


def test_self_approval_is_disabled_refused_and_audited_as_a_denial(make_member):
    owner = make_member("acme/ops", "sam-requester", role=Role.ADMIN)
    gate = review_gate(actor_for(owner), policy={"risk_tier": "external_send"})
    client = console(owner)
    page = client.get(change_url(gate))
    html = page.content.decode()
    assert f"Approve : {MESSAGES[SELF_APPROVAL_FORBIDDEN]}" in page_text(page)
    assert "disabled" in button(html, "approve") and "disabled" not in button(html, "rework")

    refused = decide(client, gate, "approve", "mine")  # posted although the button is disabled
    assert messages_of(refused) == [f"Gate {gate}: {MESSAGES[SELF_APPROVAL_FORBIDDEN]}"]
    assert is_open(gate) and not GateDecision.objects.filter(gate=gate).exists()
    [denial] = denials(gate)
    assert denial.actor_id == "sam-requester"
    assert denial.payload["code"] == SELF_APPROVAL_FORBIDDEN
    assert denial.payload["decidedBy"]["source"] == "admin"
    # The requester may still send it back.
    assert messages_of(decide(client, gate, "rework", "I will fix it")) == [
        f"Gate {gate}: sent back for rework"
    ]


def test_a_reviewer_without_clearance_is_refused_and_a_cleared_one_approves(
    make_member, reviewer, requester
):
    gate = review_gate(requester, policy={"data_classes": ["financial_record"]})
    client = console(reviewer)
    page = client.get(change_url(gate))
    assert "You may not decide this gate." in page_text(page)
    assert "clearance for the data class financial_record" in page_text(page)
    assert all("disabled" in button(page.content.decode(), d) for d in gate.decisions)

    refused = decide(client, gate, "approve", "fine")
    assert messages_of(refused) == [f"Gate {gate}: {MESSAGES[AUTHORITY_DENIED]}"]
    assert is_open(gate)
    assert [d.payload["code"] for d in denials(gate)] == [AUTHORITY_DENIED]

    cleared = make_member(
        "acme/ops", "cleo-cleared", role=Role.REVIEWER, clearances=["financial_record"]
    )
    done = decide(console(cleared), gate, "approve", "checked the ledger")
    assert messages_of(done) == [f"Gate {gate}: approved"]


def test_a_viewer_sees_why_not_and_is_refused(viewer, requester):
    gate = review_gate(requester)
    client = console(viewer)
    assert "your role (viewer) does not include review" in page_text(client.get(change_url(gate)))
    refused = decide(client, gate, "rework", "no")
    assert messages_of(refused)[0].startswith(f"Gate {gate}: ")
    assert is_open(gate)
    assert [d.payload["code"] for d in denials(gate)] == ["AUTOMATION_V2_ACCESS_DENIED"]


def test_a_lost_race_names_the_winner(make_member, reviewer, requester):
    gate = review_gate(requester)
    other = make_member("acme/ops", "ron-reviewer", role=Role.REVIEWER)
    client = console(reviewer)
    assert decide_url(gate) in client.get(change_url(gate)).content.decode()  # form on screen
    gate_decide(actor=actor_for(other), run=gate.run, decision="cancel", reason="dup")
    late = decide(client, gate, "approve", "fine")  # ... posted after the other decision
    assert late.status_code == 200
    error, winner = messages_of(late)
    assert error == f"Gate {gate}: Run is not awaiting approval"
    assert winner.startswith(f"Gate {gate}: Cancelled by ron-reviewer via API at ")
    assert "Cancelled by ron-reviewer via API at" in page_text(late)
    assert GateDecision.objects.get(gate=gate, settles=True).decided_by == other.user


def test_another_workspaces_gate_is_a_404_for_the_page_and_the_decision(operator, foreign):
    client = console(operator)
    assert client.get(change_url(foreign)).status_code == 404
    assert client.post(decide_url(foreign), {"decision": "cancel"}).status_code == 404
    assert is_open(foreign) and denials(foreign) == []


def test_the_decision_url_takes_only_a_csrf_protected_post(reviewer, requester):
    gate = review_gate(requester)
    console(reviewer)  # makes the reviewer staff
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer.user)
    assert client.get(decide_url(gate)).status_code == 405
    assert client.post(decide_url(gate), {"decision": "approve"}).status_code == 403
    assert is_open(gate)
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(change_url(gate)).content.decode()
    ).group(1)
    posted = client.post(decide_url(gate), {"decision": "approve", "csrfmiddlewaretoken": token})
    assert posted.status_code == 302 and not is_open(gate)


def test_a_signed_out_visitor_is_sent_to_the_login(requester, client):
    gate = review_gate(requester)
    response = client.post(decide_url(gate), {"decision": "approve"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert is_open(gate)


def test_closed_gates_offer_no_form(operator, reviewer, requester, decided):
    client = console(operator)
    page = page_text(client.get(change_url(decided.gate)))
    assert "Approved by rita-reviewer via API at" in page and "This gate has been decided." in page

    expired = review_gate(requester, automation_id="late")
    Gate.objects.filter(pk=expired.pk).update(expires_at=expired.requested_at)
    page = client.get(change_url(expired))
    assert "This gate expired before a decision was made." in page_text(page)
    assert decide_url(expired) not in page.content.decode()
    refused = decide(console(reviewer), expired, "approve", "late")
    assert messages_of(refused)[0] == (
        f"Gate {expired}: Approval gate expired before this decision was submitted"
    )

    superseded = review_gate(requester, automation_id="superseded")
    run_cancel(actor=requester, run=superseded.run, reason="not needed")
    page = client.get(change_url(superseded))
    assert Gate.objects.get(pk=superseded.pk).status == GateStatus.SUPERSEDED
    assert "superseded" in page_text(page) and decide_url(superseded) not in page.content.decode()


def test_a_superuser_who_is_not_a_member_decides_as_a_workspace_admin(admin_user, requester):
    """Not a member, so the approval page is a 404; the admin is where they decide, even an
    elevated gate with a data class, once cleared for it: clearances are personal, superusers
    included (issue 13)."""
    gate = review_gate(requester, policy=GOVERNED)
    clearances_set(
        workspace=gate.workspace,
        user=admin_user,
        data_classes=GOVERNED["data_classes"],
        actor=Actor.system(gate.workspace),
    )
    client = Client()
    client.force_login(admin_user)
    assert client.get(reverse("approval_pages:gate", args=[gate.pk])).status_code == 404
    assert "You may decide this gate." in page_text(client.get(change_url(gate)))
    done = decide(client, gate, "approve", "on call")
    assert messages_of(done) == [f"Gate {gate}: approved"]
    record = GateDecision.objects.get(gate=gate)
    assert (record.decided_by, record.source) == (admin_user, "admin")


def test_a_superuser_without_the_clearance_is_refused(admin_user, requester):
    """Issue 13: superusers decided gates with data classes they held no clearance for."""
    gate = review_gate(requester, policy=GOVERNED)
    client = Client()
    client.force_login(admin_user)
    page = page_text(client.get(change_url(gate)))
    assert "clearance for the data class" in page
    refused = decide(client, gate, "approve", "on call")
    assert messages_of(refused) == [f"Gate {gate}: {MESSAGES[AUTHORITY_DENIED]}"]
    assert not GateDecision.objects.filter(gate=gate, settles=True).exists()


def test_the_gate_page_costs_a_fixed_number_of_queries(
    reviewer, requester, django_assert_max_num_queries
):
    client = console(reviewer)
    short = review_gate(requester, policy={"data_classes": ["internal"]})
    with CaptureQueriesContext(connection) as few:
        assert client.get(change_url(short)).status_code == 200
    # A gate with a longer history (guard denials recorded on it) costs the same.
    long = review_gate(requester, automation_id="long", policy={"data_classes": ["internal"]})
    for _ in range(4):
        with pytest.raises(Conflict):
            gate_decide(
                actor=actor_for(reviewer),
                run=long.run,
                decision="approve",
                approval_request_id="gate-stale",
            )
    assert GateDecision.objects.filter(gate=long).count() == 4
    with django_assert_max_num_queries(len(few)):
        assert client.get(change_url(long)).status_code == 200
    # session, user, scope, gate, membership, grants, clearances, decisions, the admin's own
    # permission reads: a fixed number whatever the history's length.
    assert len(few) <= 16


def test_a_stale_opening_is_refused_and_links_to_the_reopened_gate(operator, reviewer):
    """Round 1 was sent back and the gate reopened (round 2): a decision posted from round 1's
    page is refused by the transition guard, names who settled round 1, and the page links to
    round 2."""
    run = awaiting(actor_for(operator))
    first = Gate.objects.get(run=run)
    gate_decide(actor=actor_for(reviewer), run=run, decision="rework", reason="Cite sources")
    RunNode.objects.filter(run=run, node_id__in=["draft", "review"]).update(
        state=NodeState.COMPLETED, attempts=2, output=output(summary="second draft")
    )
    engine.run_advance(run.run_id)
    second = Gate.objects.get(run=run, status=GateStatus.OPEN)
    assert second.round == 2

    client = console(reviewer)
    stale = decide(client, first, "approve", "fine")
    error, winner = messages_of(stale)
    assert error.startswith(f"Gate {first}: ") and "AUTOMATION_V2" not in error
    assert winner.startswith(f"Gate {first}: Sent back for rework by rita-reviewer via API at ")
    assert is_open(second)
    html = stale.content.decode()
    assert f'href="{change_url(second)}"' in html and "decide round 2" in html
    assert decide_url(first) not in html


def test_cancel_from_the_admin_needs_the_confirmation(reviewer, requester):
    """Cancelling cannot be undone: without the box ticked nothing is decided; with it, the run
    is cancelled through the decision service."""
    gate = review_gate(requester)
    client = console(reviewer)
    assert 'name="confirm_cancel"' in client.get(change_url(gate)).content.decode()
    decide(client, gate, "cancel", "wrong target")
    assert is_open(gate)
    client.post(
        decide_url(gate),
        {"decision": "cancel", "reason": "wrong target", "confirm_cancel": "on"},
    )
    assert GateDecision.objects.get(gate=gate, settles=True).decision == "cancel"


def test_the_gate_page_shows_what_is_under_review_before_the_decision(reviewer, requester):
    """The upstream outputs as reviewed and the downstream plan, from the approval page's own
    include, above the decision form; hostile output text stays text."""
    gate = review_gate(requester, text="Quarterly numbers <script>alert(1)</script>")
    page = console(reviewer).get(change_url(gate))
    html = page.content.decode()
    review = html.index('id="fg-under-review"')
    assert review < html.index('id="fg-gate-decision"') < html.index('class="fg-decide"')
    assert 'data-testid="upstream-output"' in html and 'data-testid="downstream-plan"' in html
    assert "Quarterly numbers &lt;script&gt;" in html and "<script>alert(1)" not in html
    assert "Under review" in page_text(page)
