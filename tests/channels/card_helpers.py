"""Gates for the card tests: runs parked by the engine on an approval gate, and decisions."""

from __future__ import annotations

import pytest

from approvals.models import Gate, GateStatus
from automations import engine
from automations.models import NodeState, RunStatus
from tests.automations.test_run_control import actor_for, agent_node, make_run, output


def approval_flow(*, decisions=("approve", "rework", "cancel"), expiry=None) -> list:
    gate = {
        "decisions": list(decisions),
        "rework_targets": ["draft"] if "rework" in decisions else [],
        "instructions": "Check the <draft> & its review",
    }
    if expiry:
        gate["expiry"] = expiry
    node = {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["draft", "review"],
        "objective": "Approve the weekly report",
        "gate": gate,
    }
    return [
        agent_node("draft"),
        agent_node("review", "draft"),
        node,
        agent_node("publish", "approval"),
    ]


def open_gate(member, *, automation_id="weekly-report", **flow) -> Gate:
    """A run of `member`'s workspace parked by the engine on its gate (hooks fire on commit)."""
    done = NodeState.COMPLETED
    run = make_run(
        actor_for(member),
        approval_flow(**flow),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={
            "draft": (done, 1, output(summary="Draft v1 of the *weekly* report <b>")),
            "review": (done, 1, output(content={"text": "Looks good.\nShip it."}, summary="")),
        },
    )
    engine.run_advance(run.run_id)
    return Gate.objects.select_related("run__automation", "workspace__organization").get(
        run=run, status=GateStatus.OPEN
    )


@pytest.fixture
def no_engine(monkeypatch):
    """Keep the engine out: decisions that requeue a run do not publish its next step."""
    monkeypatch.setattr("automations.scheduling.advance_now", lambda run_id, **kw: None)
