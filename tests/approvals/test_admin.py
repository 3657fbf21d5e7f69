"""Gates and gate decisions in the admin (approvals/admin.py): read-only, scoped to the staff
user's workspaces, lists in a constant number of queries without counting the table."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision
from tests.approvals.test_decisions import awaiting
from tests.automations.test_admin import change_url, console, no_broker  # noqa: F401
from tests.automations.test_run_control import actor_for

pytestmark = pytest.mark.django_db

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
