"""An approval covers what runs after it (issue 13, "approve what will run"), and a rework's
reason reaches the nodes it sends back ("rework that teaches").

The engine runs in this process: what it would publish after commit is collected and executed
here in order, so a test decides exactly when the run moves on (e.g. pausing an approved run
before its downstream node starts).
"""

from __future__ import annotations

import pytest

from approvals.decisions import gate_decide
from approvals.models import Gate, GateStatus
from approvals.services import reviewed_digest
from automations import engine, scheduling
from automations.api.run_json import run_json
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus
from automations.runs.control import run_pause
from automations.runs.repair import run_repair, run_task_retry
from automations.selectors import runs_with_state
from automations.services import automation_create, run_start
from governance.actors import Actor
from governance.models import AuditEvent, Membership

pytestmark = pytest.mark.django_db(transaction=True)

AGENTS = [{"agent_id": "writer", "template_id": "t1", "model_policy": {"provider": "echo"}}]


def actor_of(member) -> Actor:
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=member.user, workspace=member.workspace
    )
    return Actor.for_member(membership)


def agent(node_id, *deps, prompt=None):
    node = {"node_id": node_id, "kind": "agent", "agent_id": "writer", "depends_on": list(deps)}
    node["objective"] = prompt or f"Write {node_id}"
    return node


GATE = {
    "node_id": "approval",
    "kind": "approval",
    "depends_on": ["draft"],
    "gate": {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]},
}


@pytest.fixture
def published(monkeypatch):
    """What the engine publishes after commit, executed by `drain()` in this process."""
    queue: list[tuple] = []
    monkeypatch.setattr(scheduling, "dispatch_now", lambda d: queue.append(("node", d)))
    monkeypatch.setattr(
        scheduling, "advance_now", lambda run_id, **kw: queue.append(("advance", run_id))
    )
    monkeypatch.setattr(scheduling, "revoke_now", lambda task_ids: None)

    def drain() -> None:
        while queue:
            what, arg = queue.pop(0)
            if what == "advance":
                engine.run_advance(arg)
            else:
                engine.node_execute(arg[0], arg[1], arg[2])

    return drain


@pytest.fixture
def gated_run(operator, published):
    """draft -> approval -> publish, with a side branch `notes` after draft; parked on the gate."""
    actor = actor_of(operator)
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "plan",
            "name": "Plan",
            "agents": AGENTS,
            "flow": {
                "nodes": [
                    agent("draft"),
                    agent("notes", "draft"),
                    GATE,
                    agent("publish", "approval", prompt="Publish v1"),
                ]
            },
        },
    )
    run = run_start(actor=actor, automation=automation)
    published()
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    return run


def node(run, node_id) -> RunNode:
    return RunNode.objects.get(run=run, node_id=node_id)


def approve(member, run, decision="approve", reason=None):
    gate = Gate.objects.get(run=run, status=GateStatus.OPEN)
    gate_decide(
        actor=actor_of(member),
        run=run,
        decision=decision,
        reason=reason,
        approval_request_id=gate.pk,
    )
    return gate


def test_the_gate_keeps_the_plan_it_covers_and_the_digest_binds_it(gated_run, reviewer, client):
    gate = Gate.objects.get(run=gated_run, status=GateStatus.OPEN)
    plan = gate.reviewed["downstream_plan"]
    assert [step["node_id"] for step in plan] == ["publish"]
    assert plan[0]["spec"]["objective"] == "Publish v1"
    assert plan[0]["agent"]["model_policy"] == {"provider": "echo"}
    assert set(gate.reviewed["upstream_outputs"]) == {"draft"}
    assert gate.reviewed_digest == reviewed_digest(gate.reviewed)
    client.force_login(reviewer.user)
    page = client.get(f"/approvals/{gate.pk}/").content.decode()
    plan_html = page[page.index('data-testid="downstream-plan"') :]
    assert "Publish v1" in plan_html
    assert 'data-node-id="publish"' in plan_html


def test_a_downstream_repair_after_approval_reopens_the_gate(
    gated_run, operator, reviewer, published
):
    run = gated_run
    first = approve(reviewer, run)
    # Approved and queued; before the worker starts `publish`, an operator pauses the run and
    # repairs what `publish` will do.
    run_pause(actor=actor_of(operator), run=Run.objects.get(pk=run.pk))
    run_repair(
        actor=actor_of(operator),
        run=Run.objects.select_related("automation").get(pk=run.pk),
        node_id="publish",
        prompt="Publish v2, to everyone",
    )
    published()

    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL  # asked again, not published
    assert node(run, "publish").state == NodeState.PENDING
    assert node(run, "publish").attempts == 0
    second = Gate.objects.get(run=run, status=GateStatus.OPEN)
    assert (first.round, second.round) == (1, 2)
    assert second.reviewed["downstream_plan"][0]["spec"]["metadata"]["builder"]["prompt"] == (
        "Publish v2, to everyone"
    )
    repaired = LifecycleEvent.objects.get(run=run, event="run_step_repaired")
    assert repaired.metadata["reopened_gates"] == [
        {"node_id": "approval", "changed_nodes": ["publish"], "reset_nodes": ["publish"]}
    ]
    audit = AuditEvent.objects.get(event_type="automation.run.repaired")
    assert audit.payload["reopenedGates"][0]["node_id"] == "approval"

    approve(reviewer, run)
    published()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert "prompt: Publish v2, to everyone" in node(run, "publish").output["content"]["text"]


def test_a_downstream_task_retry_after_approval_reopens_the_gate(
    gated_run, operator, reviewer, published
):
    approve(reviewer, gated_run)
    run_pause(actor=actor_of(operator), run=Run.objects.get(pk=gated_run.pk))
    run_task_retry(actor=actor_of(operator), run=gated_run, node_id="publish")
    published()
    gated_run.refresh_from_db()
    assert gated_run.status == RunStatus.AWAITING_APPROVAL
    assert node(gated_run, "publish").attempts == 0


def test_a_change_outside_the_approved_plan_keeps_the_approval(
    gated_run, operator, reviewer, published
):
    approve(reviewer, gated_run)
    run_pause(actor=actor_of(operator), run=Run.objects.get(pk=gated_run.pk))
    run_task_retry(actor=actor_of(operator), run=gated_run, node_id="notes")
    published()
    gated_run.refresh_from_db()
    assert gated_run.status == RunStatus.COMPLETED
    assert Gate.objects.filter(run=gated_run).count() == 1  # no new round was needed


def test_a_rework_reason_reaches_the_redrafted_node_and_its_model(gated_run, reviewer, published):
    first_draft = node(gated_run, "draft").output["content"]["text"]
    approve(reviewer, gated_run, decision="rework", reason="Cite the Q3 figures")
    published()
    gated_run.refresh_from_db()
    assert gated_run.status == RunStatus.AWAITING_APPROVAL
    draft = node(gated_run, "draft")
    assert [entry["reason"] for entry in draft.feedback] == ["Cite the Q3 figures"]
    second_draft = draft.output["content"]["text"]
    assert "feedback: Cite the Q3 figures" in second_draft
    assert "feedback" not in first_draft
    loaded = runs_with_state(Run.objects.filter(pk=gated_run.pk)).get()
    shown = run_json(loaded)["checkpoint"]["node_feedback"]
    assert [entry["reason"] for entry in shown["draft"]] == ["Cite the Q3 figures"]
    # The decided first round still shows what was reviewed then.
    first, second = Gate.objects.filter(run=gated_run).order_by("round")
    assert first.reviewed["upstream_outputs"]["draft"]["content"]["text"] == first_draft
    assert second.reviewed["upstream_outputs"]["draft"]["content"]["text"] == second_draft
    assert first.reviewed_digest != second.reviewed_digest
