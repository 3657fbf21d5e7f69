"""The engine's planning step: what starts, when a gate opens, how a run ends.

The planner reads the run's node rows set-based (`plan_run(run, now)`), so each case plans a
run of the flow whose node states it sets, with readiness recomputed as a claim does.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automations.engine import plan_run
from automations.models import NodeState, Run, RunNode, RunStatus
from automations.run_nodes import nodes_plan, readiness_refresh, run_settings
from automations.run_spec import RunSpec
from tests.factories import AutomationFactory

pytestmark = pytest.mark.django_db


def spec(nodes, max_parallel=1):
    return RunSpec.from_snapshot(
        {"flow": {"nodes": nodes}, "agents": [], "execution": {"max_parallel": max_parallel}}
    )


def node(node_id, *deps, kind="agent", **extra):
    data = {"node_id": node_id, "kind": kind, "depends_on": list(deps), **extra}
    if kind == "approval":
        data["gate"] = {"decisions": ["approve"]}
    return data


class Planned:
    """A running run of `spec` whose node rows are in the given states."""

    def __init__(self, s: RunSpec, values: dict):
        automation = AutomationFactory()
        self.run = Run.objects.create(
            run_id=f"run-plan-{automation.pk}",
            workspace=automation.workspace,
            automation=automation,
            status=RunStatus.RUNNING,
            **run_settings(s),
        )
        nodes_plan(self.run, s)
        for n, value in values.items():
            state, not_before = (value, None) if isinstance(value, str) else value
            RunNode.objects.filter(run=self.run, node_id=n).update(
                state=state, not_before=not_before
            )
        readiness_refresh(self.run)

    def output(self, node_id: str, output: dict) -> None:
        RunNode.objects.filter(run=self.run, node_id=node_id).update(output=output)


def plan_run_of(s: RunSpec, nodes: dict | Planned, now):
    planned = nodes if isinstance(nodes, Planned) else Planned(s, nodes)
    plan = plan_run(planned.run, now)
    plan.start = [n.node_id for n in plan.start]
    plan.gate = plan.gate.node_id if plan.gate else None
    return plan


def states(**values):
    return values


NOW = timezone.now()
P, R, C, F, B = (
    NodeState.PENDING,
    NodeState.RUNNING,
    NodeState.COMPLETED,
    NodeState.FAILED,
    NodeState.BLOCKED,
)


def test_starts_roots_up_to_max_parallel():
    s = spec([node("a"), node("b"), node("c"), node("d", "a")], max_parallel=2)
    plan = plan_run_of(s, states(a=P, b=P, c=P, d=P), NOW)
    assert plan.start == ["a", "b"]


def test_running_nodes_use_slots():
    s = spec([node("a"), node("b"), node("c")], max_parallel=2)
    assert plan_run_of(s, states(a=R, b=P, c=P), NOW).start == ["b"]
    plan = plan_run_of(s, states(a=R, b=R, c=P), NOW)
    assert plan.start == [] and plan.busy and plan.terminal is None


def test_dependencies_must_be_completed():
    s = spec([node("a"), node("b", "a")])
    assert plan_run_of(s, states(a=R, b=P), NOW).start == []
    assert plan_run_of(s, states(a=C, b=P), NOW).start == ["b"]


def test_gate_opens_only_when_nothing_else_can_run():
    s = spec([node("a"), node("gate", "a", kind="approval"), node("side")], max_parallel=2)
    assert plan_run_of(s, states(a=C, gate=P, side=P), NOW).start == ["side"]
    assert plan_run_of(s, states(a=C, gate=P, side=R), NOW).gate is None
    assert plan_run_of(s, states(a=C, gate=P, side=C), NOW).gate == "gate"


def test_backoff_waits_and_blocks_the_gate():
    s = spec([node("a"), node("gate", kind="approval")])
    later = NOW + timedelta(seconds=30)
    plan = plan_run_of(s, states(a=(P, later), gate=P), NOW)
    assert plan.start == [] and plan.gate is None and plan.wake_at == later
    assert plan_run_of(s, states(a=(P, NOW - timedelta(seconds=1)), gate=P), NOW).start == ["a"]


def test_completed():
    s = spec([node("a"), node("b", "a")])
    status, _, failure = plan_run_of(s, states(a=C, b=C), NOW).terminal
    assert (status, failure) == ("completed", None)


def test_independent_branch_continues_after_a_failure():
    s = spec([node("a"), node("b"), node("c", "a")])
    assert plan_run_of(s, states(a=C, b=F, c=P), NOW).start == ["c"]


def test_failed_names_the_first_failed_node():
    s = spec([node("a"), node("b"), node("c", "b")])
    nodes = Planned(s, states(a=C, b=F, c=P))
    nodes.output("b", {"reason": "boom", "failure_kind": "execution_failed", "failed_at": "t"})
    status, detail, failure = plan_run_of(s, nodes, NOW).terminal
    assert status == "failed"
    assert failure == {
        "node_id": "b",
        "reason": "boom",
        "failed_at": "t",
        "failure_kind": "execution_failed",
    }
    assert "b" in detail


def test_blocked_upstream_ends_blocked():
    s = spec([node("a"), node("b", "a")])
    status, detail, _ = plan_run_of(s, states(a=B, b=P), NOW).terminal
    assert status == "blocked"
    assert "a" in detail
