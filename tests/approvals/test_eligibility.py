"""`approvals.eligibility.gate_eligibility`: what the page promises matches what the decision
service then does, and nothing is written while judging."""

from __future__ import annotations

import pytest
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.eligibility import HUMANS_ONLY, gate_eligibility
from approvals.models import Gate
from automations.services import grant_add
from governance.errors import Forbidden
from governance.models import AuditEvent, Role
from tests.factories import GOVERNED, actor_for, review_gate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def judge(member, gate):
    gate = Gate.objects.select_related("run__automation", "run__workspace").get(pk=gate.pk)
    return gate_eligibility(actor=actor_for(member), gate=gate, run=gate.run)


def test_a_reviewer_may_take_every_offered_decision(reviewer, operator):
    gate = review_gate(actor_for(operator), decisions=["approve", "cancel"])
    found = judge(reviewer, gate)
    assert found.allowed == ("approve", "cancel") and found.refused == {}
    assert found.may_decide and found.closed is None


def test_a_viewer_the_gate_was_escalated_to_may_decide_it_as_the_service_lets_them(
    viewer, operator
):
    gate = review_gate(actor_for(operator))
    assert not judge(viewer, gate).may_decide
    gate.escalated_at, gate.escalated_to = timezone.now(), [viewer.user.username]
    gate.save(update_fields=["escalated_at", "escalated_to"])

    found = judge(viewer, gate)
    assert found.may_decide and found.refused == {}
    assert found.grounds[0] == "This gate was escalated to you, which lets you review this opening."
    outcome = gate_decide(actor=actor_for(viewer), run=gate.run, decision=found.allowed[0])
    assert outcome.record.decision == found.allowed[0]


def test_an_agent_may_decide_nothing(agent, operator):
    found = judge(agent, review_gate(actor_for(operator)))
    assert found.allowed == ()
    assert set(found.refused.values()) == {HUMANS_ONLY}


def test_elevated_gates_need_a_grant_and_clearances_which_then_count_as_grounds(
    make_member, operator, admin
):
    gate = review_gate(actor_for(operator), policy=GOVERNED)
    reviewer = make_member("acme/ops", "rita-reviewer", role=Role.REVIEWER)
    refused = judge(reviewer, gate)
    assert not refused.may_decide
    assert "elevated review authority" in refused.refused["approve"]
    assert "financial_record" in refused.refused["approve"]
    # The service agrees.
    with pytest.raises(Forbidden):
        gate_decide(actor=actor_for(reviewer), run=gate.run, decision="approve")

    cleared = make_member(
        "acme/ops", "rita-reviewer", role=Role.REVIEWER, clearances=["financial_record"]
    )
    grant_add(
        actor=actor_for(admin),
        automation=gate.run.automation,
        username="rita-reviewer",
        permission="review_elevated",
    )
    allowed = judge(cleared, gate)
    assert allowed.allowed == ("approve", "rework", "cancel")
    assert any("elevated review authority" in g for g in allowed.grounds)
    assert any("financial_record" in g for g in allowed.grounds)


def test_the_requester_may_rework_and_cancel_but_not_approve_a_consequential_gate(make_member):
    owner = make_member("acme/ops", "sam-requester", role=Role.ADMIN)
    gate = review_gate(actor_for(owner), policy={"risk_tier": "money_movement_contract"})
    found = judge(owner, gate)
    assert found.allowed == ("rework", "cancel")
    assert "risk tier money_movement_contract" in found.refused["approve"]
    assert found.grounds == ("You own this automation, which includes the review permission.",)


def test_the_requester_may_approve_a_gate_that_is_not_consequential(make_member):
    owner = make_member("acme/ops", "sam-requester", role=Role.ADMIN)
    found = judge(owner, review_gate(actor_for(owner), policy={"risk_tier": "read_only"}))
    assert "approve" in found.allowed


def test_a_decided_gate_is_closed_to_everyone(reviewer, operator):
    gate = review_gate(actor_for(operator))
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="approve")
    found = judge(reviewer, gate)
    assert found.closed == "This gate has been decided." and not found.may_decide


def test_judging_writes_nothing(viewer, operator):
    gate = review_gate(actor_for(operator))
    before = AuditEvent.objects.count()
    assert not judge(viewer, gate).may_decide  # a refused review permission is not audited
    assert AuditEvent.objects.count() == before
