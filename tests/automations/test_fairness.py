"""Fairness between workspaces (automations/fairness.py) against a real worker and PostgreSQL.

Issue 15: while one workspace ran a 3,000-node flow another workspace's 1-node run did not
finish within 40 s, and cancelling the big run did not stop the work already queued. Here a
workspace floods the engine and another one's 1-node run still finishes while the flood has
barely started; the cap holds with several worker processes and concurrent admissions; a
cancelled or paused 300-node run starts nothing after the action commits and has no node
executing once the ones already running end.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from automations import fairness
from automations.models import NodeState, Run, RunNode, RunStatus
from governance.policy import Role
from tests.factories import actor_for, make_run
from tests.support.engine import AGENTS, finished
from tests.support.nodekinds import WORKER_ENV, executions, most_at_once
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("node_kinds")]

API = "/api/automations/v2"


def traced(node_id, trace_dir, *, seconds):
    return {
        "node_id": node_id,
        "kind": "traced",
        "metadata": {"sleep_s": seconds, "trace_dir": str(trace_dir)},
    }


def wide(trace_dir, width, *, seconds):
    return [traced(f"n{i:03d}", trace_dir, seconds=seconds) for i in range(width)]


def create(member, automation_id, nodes, *, max_parallel=16):
    body = {
        "automation_id": automation_id,
        "name": automation_id,
        "agents": AGENTS,
        "flow": {"nodes": nodes},
        "execution": {"max_parallel": max_parallel},
    }
    created = member.client().post(API, body, format="json")
    assert created.status_code == 201, created.json()


def run_now(member, automation_id) -> Run:
    started = member.client().post(f"{API}/{automation_id}/run_now")
    assert started.status_code == 201, started.json()
    return Run.objects.get(run_id=started.json()["run"]["run_id"])


def cap(settings, value: int) -> dict[str, str]:
    """The cap in this process (which fences and admits after an operator action) and in the
    environment of the workers the test starts."""
    settings.FLOWGATE_WORKSPACE_MAX_RUNNING_NODES = value
    return {**WORKER_ENV, "FLOWGATE_WORKSPACE_MAX_RUNNING_NODES": str(value)}


@pytest.fixture
def neighbour(make_member):
    return make_member("initech/ops", "nina-operator", role=Role.OPERATOR)


def test_a_flooding_workspace_does_not_delay_another_workspaces_one_node_run(
    operator, neighbour, celery_worker_factory, settings, tmp_path
):
    celery_worker_factory(concurrency=2, env=cap(settings, 2))
    create(operator, "flood", wide(tmp_path, 40, seconds=0.3))
    create(neighbour, "single", [traced("only", tmp_path, seconds=0.0)])
    floods = [run_now(operator, "flood") for _ in range(5)]  # 200 nodes, 80 startable at once
    wait_for(
        lambda: (
            Run.objects.filter(pk__in=[r.pk for r in floods], status=RunStatus.RUNNING).count() == 5
        ),
        timeout=30,
        message="the flood to start",
    )

    flood_nodes = RunNode.objects.filter(run__in=floods, state=NodeState.COMPLETED)
    done_before = flood_nodes.count()

    single = finished(run_now(neighbour, "single"), timeout=30)

    assert single.status == RunStatus.COMPLETED, single.detail
    # Before the cap, the single run's message waited behind the 80 node messages the flood
    # had published (about 12 s of work for two processes); now it waits for the flood's 2
    # admitted attempts at most, and the flood's chains stop continuing inline while it waits.
    waited_for = flood_nodes.count() - done_before
    assert waited_for <= 10, f"the 1-node run waited for {waited_for} nodes of the flood"
    spans = executions(tmp_path)
    flood_spans = [s for s in spans if s["workspace"] == operator.workspace.path]
    assert most_at_once(flood_spans) <= 2


def test_the_cap_holds_with_several_worker_processes_and_held_nodes_run_without_a_sweep(
    operator, neighbour, celery_worker_factory, settings, tmp_path
):
    env = cap(settings, 3)
    # Two workers of three processes each; no beat, so nothing is admitted by a sweep.
    celery_worker_factory(concurrency=3, env=env)
    celery_worker_factory(concurrency=3, env=env)
    create(operator, "wide", wide(tmp_path, 12, seconds=0.2))
    create(neighbour, "wide", wide(tmp_path, 12, seconds=0.2))
    runs = [run_now(member, "wide") for member in (operator, neighbour) for _ in range(2)]

    for run in runs:
        assert finished(run, timeout=60).status == RunStatus.COMPLETED

    spans = executions(tmp_path)
    assert len(spans) == 48
    by_workspace = {
        path: [s for s in spans if s["workspace"] == path]
        for path in (operator.workspace.path, neighbour.workspace.path)
    }
    assert all(most_at_once(group) <= 3 for group in by_workspace.values())
    # The cap is per workspace: the two workspaces ran side by side.
    assert most_at_once(spans) > 3


def held_attempts(member, runs: int) -> None:
    """`runs` runs of the workspace with their three nodes started and held by the cap."""
    actor = actor_for(member)
    for _ in range(runs):
        run = make_run(actor, status=RunStatus.RUNNING)
        for node in RunNode.objects.filter(run=run):
            RunNode.objects.filter(pk=node.pk).update(
                state=NodeState.RUNNING, attempts=1, task_id="t", attempt_token=uuid.uuid4()
            )


def admit_from_threads(workspace_id: int, threads: int) -> None:
    """`fairness.admit` from `threads` threads at once, each on its own PostgreSQL connection."""
    barrier = threading.Barrier(threads)

    def admit():
        try:
            barrier.wait()
            fairness.admit(workspace_id)
        finally:
            connection.close()

    started = [threading.Thread(target=admit) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()


@pytest.fixture
def published(monkeypatch) -> list[str]:
    """The attempt tokens admission publishes (kept out of the broker)."""
    tokens: list[str] = []
    monkeypatch.setattr(
        "automations.scheduling.dispatch_now", lambda dispatch: tokens.append(dispatch[2])
    )
    return tokens


def test_concurrent_admissions_never_hand_out_more_than_the_cap(operator, settings, published):
    """Eight threads admit the same workspace's 30 held attempts at once: exactly the cap is
    admitted and published, each attempt once, the oldest first."""
    settings.FLOWGATE_WORKSPACE_MAX_RUNNING_NODES = 5
    settings.FLOWGATE_WORKSPACE_BROKER_BACKLOG = 100
    held_attempts(operator, 10)
    assert RunNode.objects.filter(fairness.HELD).count() == 30

    admit_from_threads(operator.workspace.pk, 8)

    admitted = RunNode.objects.filter(fairness.ADMITTED)
    assert admitted.count() == 5
    tokens = admitted.values_list("attempt_token", flat=True)
    assert sorted(published) == sorted(str(token) for token in tokens)
    oldest = RunNode.objects.filter(fairness.LIVE).order_by("pk").values_list("pk", flat=True)
    assert set(admitted.values_list("pk", flat=True)) == set(oldest[:5])

    # An attempt ending frees its slot for the next held one, and only that one.
    RunNode.objects.filter(pk=oldest[0]).update(state=NodeState.COMPLETED)
    admit_from_threads(operator.workspace.pk, 4)
    assert RunNode.objects.filter(fairness.ADMITTED).count() == 5
    assert len(published) == 6


def test_at_most_the_backlog_waits_in_the_broker_and_a_claim_admits_the_next(
    operator, settings, published
):
    settings.FLOWGATE_WORKSPACE_MAX_RUNNING_NODES = 5
    settings.FLOWGATE_WORKSPACE_BROKER_BACKLOG = 2
    held_attempts(operator, 3)

    admit_from_threads(operator.workspace.pk, 4)
    waiting = RunNode.objects.filter(fairness.ADMITTED, started_at__isnull=True)
    assert waiting.count() == settings.FLOWGATE_WORKSPACE_BROKER_BACKLOG == 2

    # A worker claims one (`engine.node_execute`) and admits: one more goes to the broker.
    RunNode.objects.filter(pk=waiting.first().pk).update(started_at=timezone.now())
    assert fairness.admit(operator.workspace.pk) == 1
    assert waiting.count() == 2
    assert RunNode.objects.filter(fairness.ADMITTED).count() == 3
    assert len(published) == 3


@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_stopping_a_300_node_run_stops_its_queued_and_running_work(
    action, operator, celery_worker_factory, settings, tmp_path
):
    celery_worker_factory(concurrency=2, env=cap(settings, 8))
    create(operator, "big", wide(tmp_path, 300, seconds=0.3))
    run = run_now(operator, "big")
    wait_for(lambda: len(executions(tmp_path)) >= 4, timeout=30, message="nodes to execute")

    response = operator.client().post(f"{API}/runs/{run.run_id}/{action}")
    assert response.status_code == 200, response.json()
    committed = time.time()

    # The nodes executing when the action committed end (their results are discarded), and
    # nothing else of the run starts: a bounded time after, no node code of it is executing.
    wait_for(
        lambda: all(span["ended"] for span in executions(tmp_path)),
        timeout=10,
        message="the executing nodes to end",
    )
    time.sleep(2.0)  # time for any queued message the action failed to stop to execute
    spans = executions(tmp_path)
    assert all(span["ended"] for span in spans)
    assert [span for span in spans if span["started"] > committed] == []
    assert len(spans) <= 8 + 2  # the admitted attempts at most, never the 300
    run.refresh_from_db()
    assert run.status == {"cancel": RunStatus.CANCELLED, "pause": RunStatus.PAUSED}[action]
    assert not RunNode.objects.filter(run=run, state=NodeState.RUNNING).exists()
