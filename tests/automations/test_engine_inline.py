"""A worker executes a run's next node itself when it is the only one to start (no task
message, no claim round trip), under the same start, claim and fencing rules as a dispatch.

Driven in-process (`run_advance_and_execute` is what the advance task runs); what would be
dispatched to other workers is recorded instead of sent.
"""

from __future__ import annotations

import pytest

from automations import engine, scheduling
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus
from automations.runs.control import run_pause
from automations.services import automation_create, run_start
from governance.actors import Actor
from governance.models import Membership
from tests.support.engine import AGENTS, agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(operator) -> Actor:
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=operator.user
    )
    return Actor.for_member(membership)


@pytest.fixture
def dispatched(monkeypatch) -> list[tuple]:
    sent: list[tuple] = []
    monkeypatch.setattr(scheduling, "dispatch_now", sent.append)
    monkeypatch.setattr(scheduling, "advance_now", lambda *args, **kwargs: None)
    return sent


def start(actor, nodes, *, max_parallel=1) -> Run:
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "inline",
            "name": "Inline",
            "agents": AGENTS,
            "flow": {"nodes": nodes},
            "execution": {"max_parallel": max_parallel},
        },
    )
    return run_start(actor=actor, automation=automation)


def advance(run: Run, capture) -> Run:
    with capture(execute=True):
        engine.run_advance_and_execute(run.run_id)
    return Run.objects.get(pk=run.pk)


def history(run: Run) -> list[tuple[str, str | None]]:
    return [
        (event, metadata.get("node_id"))
        for event, metadata in LifecycleEvent.objects.filter(run=run)
        .order_by("at", "id")
        .values_list("event", "metadata")
    ]


def test_a_chain_runs_in_the_advancing_worker(
    actor, dispatched, django_capture_on_commit_callbacks
):
    run = advance(
        start(actor, [agent("a"), agent("b", "a"), agent("c", "b")]),
        django_capture_on_commit_callbacks,
    )
    assert run.status == RunStatus.COMPLETED, run.detail
    assert dispatched == []
    nodes = RunNode.objects.filter(run=run)
    assert {(n.node_id, n.state, n.attempts, n.attempt_token) for n in nodes} == {
        (node_id, NodeState.COMPLETED, 1, None) for node_id in "abc"
    }
    assert all(n.started_at and n.finished_at >= n.started_at for n in nodes)
    # b saw a's output, c saw b's: upstream outputs come from the accepting transaction.
    outputs = {n.node_id: n.output for n in nodes}
    assert outputs["b"]["content"]["text"] != outputs["c"]["content"]["text"]
    assert history(run)[-7:] == [
        ("node_started", "a"),
        ("node_completed", "a"),
        ("node_started", "b"),
        ("node_completed", "b"),
        ("node_started", "c"),
        ("node_completed", "c"),
        ("run_completed", None),
    ]


def test_parallel_starts_and_time_limited_nodes_are_dispatched(
    actor, dispatched, django_capture_on_commit_callbacks, settings
):
    """Two nodes starting together go to the workers (parallelism), and so does a node with
    `timeout_s` (its task carries the time limit); dispatched attempts are not claimed. Two may
    wait in the broker here: with the default backlog of one, the second is sent when a worker
    claims the first (tests/automations/test_fairness.py)."""
    settings.FLOWGATE_WORKSPACE_BROKER_BACKLOG = 2
    limited = {**agent("c", "b1", "b2"), "timeout_s": 30}
    nodes = [agent("a"), agent("b1", "a"), agent("b2", "a"), limited]
    run = advance(start(actor, nodes, max_parallel=2), django_capture_on_commit_callbacks)
    assert run.status == RunStatus.RUNNING
    assert sorted(d[1] for d in dispatched) == ["b1", "b2"]
    for run_id, node_id, token, *_ in list(dispatched):
        with django_capture_on_commit_callbacks(execute=True):
            assert engine.node_execute(run_id, node_id, token)
    assert [d[1] for d in dispatched[2:]] == ["c"]
    assert dispatched[2][4] == 30.0  # the node's time limit travels with its task
    c = RunNode.objects.get(run=run, node_id="c")
    assert (c.state, c.started_at) == (NodeState.RUNNING, None)
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.node_execute(*dispatched[2][:3])
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_no_inline_continuation_past_the_budget(
    actor, dispatched, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(engine, "INLINE_BUDGET_S", 0.0)
    run = advance(start(actor, [agent("a"), agent("b", "a")]), django_capture_on_commit_callbacks)
    assert [d[1] for d in dispatched] == ["b"]
    assert RunNode.objects.get(run=run, node_id="b").started_at is None


def pause_during(ctx):
    """A node kind during whose execution an operator pauses the run."""
    run_pause(actor=PAUSER.actor, run=Run.objects.get(run_id=ctx.run_id), reason="hold on")
    return {"status": "completed", "summary": "finished after the pause"}


class PAUSER:
    """Who pauses, set by the test (node kinds get only their context)."""

    actor: Actor


def test_a_pause_fences_an_inline_attempt(
    actor, dispatched, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The pause clears the token of the node executing inline: its result is discarded and
    the chain stops there, exactly as for a dispatched attempt."""
    settings.FLOWGATE_NODE_KINDS = {"pause_during": f"{__name__}.pause_during"}
    monkeypatch.setattr(scheduling, "revoke_now", lambda task_ids: None)
    monkeypatch.setattr(PAUSER, "actor", actor, raising=False)
    pausing = {"node_id": "b", "kind": "pause_during", "depends_on": ["a"]}
    run = advance(
        start(actor, [agent("a"), pausing, agent("c", "b")]), django_capture_on_commit_callbacks
    )
    assert run.status == RunStatus.PAUSED
    nodes = {n.node_id: n for n in RunNode.objects.filter(run=run)}
    assert nodes["a"].state == NodeState.COMPLETED
    assert (nodes["b"].state, nodes["b"].output, nodes["b"].attempts) == (
        NodeState.PENDING,
        None,
        1,
    )
    assert (nodes["c"].state, nodes["c"].attempts) == (NodeState.PENDING, 0)
    assert history(run)[-2:] == [("run_paused", None), ("node_result_discarded", "b")]
    assert dispatched == []
