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


def decide(gate: Gate, decision: str, *, settles: bool) -> GateDecision:
    return GateDecision.objects.create(
        gate=gate,
        run=gate.run,
        node_id=gate.node_id,
        decision=decision,
        settles=settles,
        decider_kind="human",
        source="api",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "decision,settles",
    [
        (Decision.GUARD_DENIED, True),  # a record only: must not take the settling slot
        (Decision.APPROVE, False),  # a real decision that would leave the gate open
        (Decision.EXPIRED, False),
    ],
)
def test_settles_is_exactly_not_guard_denied(gate, decision, settles):
    with pytest.raises(IntegrityError, match="guard_denied_never_settles"), transaction.atomic():
        decide(gate, decision, settles=settles)
    assert not GateDecision.objects.exists()


@pytest.mark.django_db
def test_guard_denials_are_recorded_beside_the_one_settling_decision(gate):
    decide(gate, Decision.GUARD_DENIED, settles=False)
    decide(gate, Decision.GUARD_DENIED, settles=False)
    decide(gate, Decision.APPROVE, settles=True)
    assert GateDecision.objects.filter(gate=gate).count() == 3
