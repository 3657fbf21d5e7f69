"""Property: whatever the flow's shape, no node downstream of an open or undecided gate ever
starts before that gate is approved (hypothesis generates the flows; the engine runs in this
process and gates are approved one at a time)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.decisions import gate_decide
from approvals.models import Gate, GateStatus
from automations import engine, scheduling
from automations.flow import descendants
from automations.models import NodeState, Run, RunNode, RunStatus
from automations.services import automation_create, run_start
from governance.actors import Actor
from governance.models import Membership

AGENTS = [{"agent_id": "w", "template_id": "t", "model_policy": {"provider": "echo"}}]


@st.composite
def flows(draw):
    """A DAG of 2-8 nodes: each depends on a subset of the earlier ones; about a third are
    approval gates (never the first, and always after something)."""
    size = draw(st.integers(min_value=2, max_value=8))
    nodes = []
    for index in range(size):
        earlier = [n["node_id"] for n in nodes]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        gate = index > 0 and draw(st.integers(0, 2)) == 0
        node_id = f"n{index}"
        if gate:
            deps = deps or [earlier[-1]]
            nodes.append(
                {
                    "node_id": node_id,
                    "kind": "approval",
                    "depends_on": deps,
                    "gate": {"decisions": ["approve", "cancel"]},
                }
            )
        else:
            nodes.append(
                {"node_id": node_id, "kind": "agent", "agent_id": "w", "objective": node_id,
                 "depends_on": deps}
            )  # fmt: skip
    return nodes


def actor_of(member) -> Actor:
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=member.user, workspace=member.workspace
    )
    return Actor.for_member(membership)


def assert_nothing_ran_below_an_unapproved_gate(run, flow):
    rows = {n.node_id: n for n in RunNode.objects.filter(run=run)}
    for node in flow:
        if node["kind"] != "approval" or rows[node["node_id"]].state == NodeState.COMPLETED:
            continue
        below = descendants(flow, [node["node_id"]]) - {node["node_id"]}
        started = sorted(n for n in below if rows[n].attempts or rows[n].state != "pending")
        assert started == [], f"{started} started before gate {node['node_id']} was approved"


@pytest.mark.django_db
def test_no_node_below_a_gate_starts_before_its_approval(
    operator, reviewer, monkeypatch, django_capture_on_commit_callbacks
):
    queue: list[tuple] = []
    monkeypatch.setattr(scheduling, "dispatch_now", lambda d: queue.append(("node", d)))
    monkeypatch.setattr(
        scheduling, "advance_now", lambda run_id, **kw: queue.append(("advance", run_id))
    )
    requester, approver = actor_of(operator), actor_of(reviewer)
    examples = iter(range(10_000))

    def step(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    def drain(run, flow):
        while queue:
            what, arg = queue.pop(0)
            if what == "advance":
                step(engine.run_advance, arg)
            else:
                step(engine.node_execute, arg[0], arg[1], arg[2])
            assert_nothing_ran_below_an_unapproved_gate(run, flow)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(flow=flows())
    def check(flow):
        queue.clear()
        automation = automation_create(
            actor=requester,
            data={
                "automation_id": f"prop-{next(examples)}",
                "name": "Property",
                "agents": AGENTS,
                "flow": {"nodes": flow},
                "execution": {"max_parallel": 4},
            },
        )
        run = step(run_start, actor=requester, automation=automation)
        drain(run, flow)
        for _ in flow:
            run.refresh_from_db()
            if run.status != RunStatus.AWAITING_APPROVAL:
                break
            gate = Gate.objects.get(run=run, status=GateStatus.OPEN)
            step(
                gate_decide,
                actor=approver,
                run=run,
                decision="approve",
                approval_request_id=gate.pk,
            )
            drain(run, flow)
        assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED

    check()
