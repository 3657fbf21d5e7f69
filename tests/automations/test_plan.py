"""The engine's planning step: what starts, when a gate opens, how a run ends (no database)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from automations.engine import plan_run
from automations.models import NodeState, RunNode
from automations.run_spec import RunSpec


def spec(nodes, max_parallel=1):
    return RunSpec.from_snapshot(
        {"flow": {"nodes": nodes}, "agents": [], "execution": {"max_parallel": max_parallel}}
    )


def node(node_id, *deps, kind="agent", **extra):
    data = {"node_id": node_id, "kind": kind, "depends_on": list(deps), **extra}
    if kind == "approval":
        data["gate"] = {"decisions": ["approve"]}
    return data


def states(**values):
    return {
        n: RunNode(
            node_id=n,
            state=s if isinstance(s, str) else s[0],
            attempts=0,
            not_before=None if isinstance(s, str) else s[1],
        )
        for n, s in values.items()
    }


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
    plan = plan_run(s, states(a=P, b=P, c=P, d=P), NOW)
    assert plan.start == ["a", "b"]


def test_running_nodes_use_slots():
    s = spec([node("a"), node("b"), node("c")], max_parallel=2)
    assert plan_run(s, states(a=R, b=P, c=P), NOW).start == ["b"]
    plan = plan_run(s, states(a=R, b=R, c=P), NOW)
    assert plan.start == [] and plan.busy and plan.terminal is None


def test_dependencies_must_be_completed():
    s = spec([node("a"), node("b", "a")])
    assert plan_run(s, states(a=R, b=P), NOW).start == []
    assert plan_run(s, states(a=C, b=P), NOW).start == ["b"]


def test_gate_opens_only_when_nothing_else_can_run():
    s = spec([node("a"), node("gate", "a", kind="approval"), node("side")], max_parallel=2)
    assert plan_run(s, states(a=C, gate=P, side=P), NOW).start == ["side"]
    assert plan_run(s, states(a=C, gate=P, side=R), NOW).gate is None
    assert plan_run(s, states(a=C, gate=P, side=C), NOW).gate == "gate"


def test_backoff_waits_and_blocks_the_gate():
    s = spec([node("a"), node("gate", kind="approval")])
    later = NOW + timedelta(seconds=30)
    plan = plan_run(s, states(a=(P, later), gate=P), NOW)
    assert plan.start == [] and plan.gate is None and plan.wake_at == later
    assert plan_run(s, states(a=(P, NOW - timedelta(seconds=1)), gate=P), NOW).start == ["a"]


def test_completed():
    s = spec([node("a"), node("b", "a")])
    status, _, failure = plan_run(s, states(a=C, b=C), NOW).terminal
    assert (status, failure) == ("completed", None)


def test_independent_branch_continues_after_a_failure():
    s = spec([node("a"), node("b"), node("c", "a")])
    assert plan_run(s, states(a=C, b=F, c=P), NOW).start == ["c"]


def test_failed_names_the_first_failed_node():
    s = spec([node("a"), node("b"), node("c", "b")])
    nodes = states(a=C, b=F, c=P)
    nodes["b"].output = {"reason": "boom", "failure_kind": "execution_failed", "failed_at": "t"}
    status, detail, failure = plan_run(s, nodes, NOW).terminal
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
    status, detail, _ = plan_run(s, states(a=B, b=P), NOW).terminal
    assert status == "blocked"
    assert "a" in detail
