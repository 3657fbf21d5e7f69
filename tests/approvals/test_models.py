"""Database constraints on gate decisions (PostgreSQL refuses what the code must never write)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import Decision, Gate, GateDecision
from automations.models import Run
from tests.factories import AutomationFactory


@pytest.fixture
def gate(workspace, operator):
    automation = AutomationFactory(workspace=workspace, created_by=operator.user)
    run = Run.objects.create(run_id="run-1", workspace=workspace, automation=automation)
    now = timezone.now()
    return Gate.objects.create(
        id="gate-1",
        run=run,
        workspace=workspace,
        node_id="approval",
        title="Approve",
        requested_at=now,
        expires_at=now,
    )


def decide(gate: Gate, decision: str, *, settles: bool, by=None, on_behalf_of=None) -> GateDecision:
    return GateDecision.objects.create(
        gate=gate,
        run=gate.run,
        node_id=gate.node_id,
        decision=decision,
        settles=settles,
        decided_by=by,
        on_behalf_of=on_behalf_of,
        decider_kind="human",
        source="api",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "decision,settles",
    [
        (Decision.GUARD_DENIED, True),  # a record only: must not take the settling slot
        (Decision.REWORK, False),  # a veto that would leave the gate open
        (Decision.EXPIRED, False),
    ],
)
def test_only_denials_and_quorum_approvals_leave_the_gate_open(gate, decision, settles):
    with (
        pytest.raises(IntegrityError, match="only_denials_and_approvals_unsettling"),
        transaction.atomic(),
    ):
        decide(gate, decision, settles=settles)
    assert not GateDecision.objects.exists()


@pytest.mark.django_db
def test_guard_denials_are_recorded_beside_the_one_settling_decision(gate):
    decide(gate, Decision.GUARD_DENIED, settles=False)
    decide(gate, Decision.GUARD_DENIED, settles=False)
    decide(gate, Decision.APPROVE, settles=True)
    assert GateDecision.objects.filter(gate=gate).count() == 3


@pytest.mark.django_db
def test_one_approval_per_person_per_opening(gate, reviewer, operator, admin):
    """Partial approvals of a quorum gate settle nothing; the same person (themselves or through
    a delegate) and the same human (for whomever) approve an opening once."""
    decide(gate, Decision.APPROVE, settles=False, by=reviewer.user)
    with pytest.raises(IntegrityError, match="one_approval_per"), transaction.atomic():
        decide(gate, Decision.APPROVE, settles=False, by=reviewer.user)
    with pytest.raises(IntegrityError, match="one_approval_per_person"), transaction.atomic():
        decide(gate, Decision.APPROVE, settles=False, by=operator.user, on_behalf_of=reviewer.user)
    with pytest.raises(IntegrityError, match="one_approval_per_approver"), transaction.atomic():
        decide(gate, Decision.APPROVE, settles=True, by=reviewer.user, on_behalf_of=admin.user)
    decide(gate, Decision.APPROVE, settles=True, by=operator.user)
    assert GateDecision.objects.filter(gate=gate, settles=True).count() == 1
