"""Per-node work does not grow with the flow (issue 15 item 1).

A node execution and a node finish run the same statements for a 5-node flow as for a
200-node one, chain or wide fan-out; none of them reads the run's snapshot; finishing a node
locks the run and that node only, not every node row of the run.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from automations import engine
from automations.models import NodeState, Run, RunNode, RunStatus
from automations.services import automation_create, run_start
from tests.factories import actor_for
from tests.support.engine import AGENTS

pytestmark = pytest.mark.usefixtures("no_broker")


@pytest.fixture(autouse=True)
def after_commit(monkeypatch, django_capture_on_commit_callbacks):
    """What runs after each step's commit runs (the workspace's admission of held attempts,
    `automations.fairness`), as in a worker; node attempts it publishes are recorded."""
    monkeypatch.setattr("automations.scheduling.dispatch_now", lambda dispatch: True)

    def committed():
        return django_capture_on_commit_callbacks(execute=True)

    return committed


def echo(node_id: str, *deps: str) -> dict:
    """An echo agent node with a time limit, so its execution runs that node only (a node
    without one would go on with the run's next nodes in the same call)."""
    return {
        "node_id": node_id,
        "kind": "agent",
        "agent_id": "writer",
        "objective": f"Do {node_id}",
        "depends_on": list(deps),
        "timeout_s": 60,
    }


def chain(size: int) -> list[dict]:
    return [echo(f"n{i}", *([f"n{i - 1}"] if i else [])) for i in range(size)]


def fanout(size: int) -> list[dict]:
    return [echo("n0")] + [echo(f"n{i}", "n0") for i in range(1, size)]


SHAPES = {"chain": chain, "fanout": fanout}


def started_run(operator, shape: str, size: int, committed) -> Run:
    """A run of the flow, claimed by the engine, its first node started."""
    actor = actor_for(operator)
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": f"{shape}-{size}",
            "name": f"{shape} of {size}",
            "agents": AGENTS,
            "flow": {"nodes": SHAPES[shape](size)},
            "execution": {"max_parallel": 2},
        },
    )
    run = run_start(actor=actor, automation=automation)
    with committed():
        engine.run_advance(run.run_id)
    return run


def token(run: Run, node_id: str) -> str:
    node = RunNode.objects.get(run=run, node_id=node_id)
    assert node.state == NodeState.RUNNING, (node_id, node.state)
    return str(node.attempt_token)


def execute(run: Run, node_id: str, committed) -> CaptureQueriesContext:
    """Execute the started attempt of `node_id`; the statements it ran (and its commits'
    callbacks)."""
    attempt = token(run, node_id)
    with CaptureQueriesContext(connection) as queries, committed():
        assert engine.node_execute(run.run_id, node_id, attempt)
    return queries


def finish(run: Run, node_id: str, committed) -> CaptureQueriesContext:
    """Accept a result for the started attempt of `node_id`; the statements it ran (and its
    commit's callbacks)."""
    attempt = token(run, node_id)
    with CaptureQueriesContext(connection) as queries, committed():
        accepted = engine.node_result_accept(
            run.run_id, node_id, attempt, output={"status": "completed"}, failure=None
        )
    assert accepted
    return queries


def steps(operator, shape: str, size: int, measure, committed) -> list[CaptureQueriesContext]:
    """The statements of each measured step through the start of a run of `size` nodes:

    chain: n0 (releases n1 and starts it), then n1 (a node in the middle);
    fan-out (`max_parallel` 2): n0 (releases every leaf, starts two), then n1 (a leaf whose
    finish starts the next leaf)."""
    run = started_run(operator, shape, size, committed)
    return [measure(run, "n0", committed), measure(run, "n1", committed)]


def sql(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("measure", [execute, finish], ids=["execution", "finish"])
def test_a_node_step_runs_the_same_statements_for_5_and_200_nodes(
    make_member, shape, measure, after_commit
):
    # Each size in a workspace of its own: admission counts a workspace's live attempts.
    small_operator = make_member("acme/small", "op-small", role="operator")
    large_operator = make_member("acme/large", "op-large", role="operator")
    small = [len(q) for q in steps(small_operator, shape, 5, measure, after_commit)]
    large = [len(q) for q in steps(large_operator, shape, 200, measure, after_commit)]
    assert small == large
    # An execution claims the attempt and reads its node, its run and its upstream outputs;
    # the finish is the accepting transaction: run and node locked, the node written, its
    # dependents released, the running nodes counted, the next ready ones read and started,
    # the run and its lifecycle rows written (plus the test's savepoint pair); then the
    # workspace's admission of held attempts (`automations.fairness`). With one message of a
    # workspace waiting in the broker (the default backlog), the fan-out's second started
    # leaf is admitted during the step rather than before it: the same statements, counted here.
    assert max(large) <= (31 if measure is execute else 22)


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
def test_a_node_execution_never_reads_the_snapshot(operator, shape, after_commit):
    for queries in steps(operator, shape, 200, execute, after_commit):
        reads = [s for s in sql(queries) if "automation_snapshot" in s]
        assert reads == []


@pytest.mark.django_db(transaction=True)
def test_finishing_a_node_does_not_lock_the_other_node_rows(operator, after_commit):
    """While another transaction holds the row lock of a node elsewhere in the flow, a node
    finishes without waiting for it (the old accept locked every node row of the run)."""
    run = started_run(operator, "fanout", 20, after_commit)
    finish(run, "n0", after_commit)  # n1 and n2 running
    locked = threading.Event()
    release = threading.Event()

    def hold_another_node() -> None:
        try:
            with transaction.atomic():
                list(RunNode.objects.select_for_update().filter(run=run, node_id="n15"))
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_another_node)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # waiting for n15 fails the test
        try:
            finish(run, "n1", after_commit)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
    finally:
        release.set()
        holder.join()
    assert RunNode.objects.get(run=run, node_id="n1").state == NodeState.COMPLETED
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
