"""Fault injection with real processes: a worker SIGKILLed mid-node, the broker (Redis)
restarted while runs wait in it, and the database connection of a request cut mid-request.

tests/automations/test_engine.py already shows a killed worker's run paused by the stale sweep;
here the run is then recovered and must complete with every node output kept and none
duplicated. The Redis test starts its own redis-server on a free port (never the shared one)
with its own worker.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client

from automations import tasks
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus
from automations.runs import control
from automations.services import automation_create, run_start
from governance.models import AuditEvent
from tests.factories import actor_for
from tests.support.nodekinds import WORKER_ENV
from tests.support.wait import wait_for
from tests.support.worker import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("node_kinds")]

AGENTS = [{"agent_id": "writer", "template_id": "t1", "model_policy": {"provider": "echo"}}]


def agent(node_id, *deps):
    return {
        "node_id": node_id,
        "kind": "agent",
        "agent_id": "writer",
        "objective": f"Write {node_id}",
        "depends_on": list(deps),
    }


def automation(actor, nodes, automation_id="faults"):
    return automation_create(
        actor=actor,
        data={
            "automation_id": automation_id,
            "name": "Faults",
            "agents": AGENTS,
            "flow": {"nodes": nodes},
            "execution": {"max_parallel": 1},
        },
    )


def completions(run) -> Counter:
    return Counter(
        LifecycleEvent.objects.filter(run=run, event="node_completed").values_list(
            "metadata__node_id", flat=True
        )
    )


def test_killed_worker_mid_node_then_recover_completes_without_loss_or_duplicates(
    operator, celery_worker_factory, tmp_path
):
    actor = actor_for(operator)
    hold = tmp_path / "hold"
    hold.touch()
    nodes = [
        agent("first"),
        {
            "node_id": "held",
            "kind": "held",
            "depends_on": ["first"],
            "metadata": {"hold_file": str(hold)},
            "retry": {"max_attempts": 3},
        },
        agent("last", "held"),
    ]
    worker = celery_worker_factory(env=WORKER_ENV)
    run = run_start(actor=actor, automation=automation(actor, nodes))
    wait_for(
        lambda: RunNode.objects.filter(run=run, node_id="held", started_at__isnull=False).exists(),
        timeout=30,
    )
    first_output = RunNode.objects.get(run=run, node_id="first").output
    worker.kill()  # SIGKILL mid-node: no result, no acknowledgement, no heartbeat
    hold.unlink()

    sweeper = celery_worker_factory(env={**WORKER_ENV, "FLOWGATE_STALE_AFTER_S": "1"})
    time.sleep(1.5)
    tasks.sweep_runs.delay()
    paused = wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.PAUSED).first(), timeout=30
    )
    assert (paused.stop_kind, paused.pause_reason) == ("stale_reaped", "stale_no_provider_activity")

    control.run_recover(actor=actor, run=Run.objects.select_related("automation").get(pk=run.pk))
    done = wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
        timeout=60,
        message="the recovered run did not complete",
    )
    assert sweeper.alive
    nodes_after = {n.node_id: n for n in RunNode.objects.filter(run=done)}
    assert {n.state for n in nodes_after.values()} == {NodeState.COMPLETED}
    # Nothing lost: the node completed before the crash kept its output and was not re-run.
    assert nodes_after["first"].output == first_output
    assert nodes_after["first"].attempts == 1
    # Nothing duplicated: every node completed exactly once; the held node started twice (the
    # killed attempt, then the one after recovery) and its output is the second one's.
    assert completions(done) == {"first": 1, "held": 1, "last": 1}
    started = LifecycleEvent.objects.filter(run=done, event="node_started")
    assert started.filter(metadata__node_id="held").count() == 2
    assert nodes_after["held"].output["summary"].startswith("done in attempt")


# --- Redis restarted while runs are queued ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayRedis:
    """A redis-server of this test only, without persistence (a restart loses every message)."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self._answers(), timeout=10, message="redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def throwaway_broker(tmp_path, celery_worker_factory):
    """Point this process's Celery publishing at a throwaway Redis; restore the shared one."""
    from config.celery import app

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    redis = ThrowawayRedis(tmp_path)
    redis.start()
    shared = app.conf.broker_url

    def use(url):
        app.conf.broker_url = url
        app._pool = None  # the next publish opens a pool for `url`
        app.amqp._producer_pool = None

    use(redis.url)
    yield redis
    use(shared)
    redis.stop()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_redis_restart_loses_no_queued_run(operator, celery_worker_factory, throwaway_broker):
    actor = actor_for(operator)
    flow = automation(actor, [agent("a"), agent("b", "a")])
    with transaction.atomic():
        runs = [run_start(actor=actor, automation=flow) for _ in range(5)]
    # The advance messages wait in Redis: no worker consumes yet. Restarting Redis without
    # persistence drops them all.
    throwaway_broker.stop()
    throwaway_broker.start()

    env = {"REDIS_URL": throwaway_broker.url, "FLOWGATE_SWEEP_INTERVAL_S": "1"}
    celery_worker_factory(env=env)
    time.sleep(1.2)  # the runs are now idle for longer than the sweep interval
    assert Run.objects.filter(status=RunStatus.QUEUED).count() == 5  # nothing ran them
    tasks.sweep_runs.delay()  # what beat sends every FLOWGATE_SWEEP_INTERVAL_S
    wait_for(
        lambda: Run.objects.filter(status=RunStatus.COMPLETED).count() == 5,
        timeout=60,
        message="not every queued run completed after the broker came back",
    )
    for run in runs:
        assert completions(run) == {"a": 1, "b": 1}


# --- The database connection of a request cut mid-request -------------------------------------


def test_database_connection_cut_mid_request_is_a_clean_503_with_no_partial_write(operator):
    """The request blocks on the run's row lock (held by another connection); its backend is
    terminated while it waits. The answer is a JSON 503, nothing of the action is written, and
    the next request works."""
    actor = actor_for(operator)
    run = run_start(actor=actor, automation=automation(actor, [agent("a")]))
    audits_before = AuditEvent.objects.count()
    events_before = LifecycleEvent.objects.filter(run=run).count()
    url = database_url(connection.settings_dict)
    result = {}

    def request():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {operator.token}")
        try:
            result["response"] = client.post(
                f"/api/automations/v2/runs/{run.run_id}/pause",
                {"reason": "cut"},
                content_type="application/json",
            )
        finally:
            connection.close()  # this thread's own (terminated) connection

    # `killer` autocommits: pg_stat_activity is a snapshot per transaction, so each poll must
    # be its own transaction to see the request start waiting.
    with (
        psycopg.connect(url, autocommit=False) as locker,
        psycopg.connect(url, autocommit=True) as killer,
    ):
        locker.execute("SELECT 1 FROM automations_run WHERE run_id = %s FOR UPDATE", [run.run_id])
        thread = threading.Thread(target=request)
        thread.start()
        pid = wait_for(
            lambda: killer.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone(),
            timeout=20,
            message="the request never waited for the row lock",
        )[0]
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        thread.join(20)
        locker.rollback()

    response = result["response"]
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "DATABASE_UNAVAILABLE"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert AuditEvent.objects.count() == audits_before
    assert LifecycleEvent.objects.filter(run=run).count() == events_before

    again = Client(HTTP_AUTHORIZATION=f"Bearer {operator.token}").post(
        f"/api/automations/v2/runs/{run.run_id}/pause", {}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["run"]["status"] == "paused"


# --- Redis down while requests change runs ----------------------------------------------------


def gate_flow(actor):
    gate = {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["draft"],
        "gate": {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]},
    }
    return automation(actor, [agent("draft"), gate, agent("publish", "approval")], "gated")


def held_flow(actor, hold_file):
    node = {"node_id": "slow", "kind": "held", "metadata": {"hold_file": str(hold_file)}}
    return automation(actor, [node], "held")


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_broker_down_decision_pause_and_run_now_answer_2xx_and_their_work_is_done_after(
    operator, reviewer, celery_worker_factory, throwaway_broker, tmp_path
):
    """The committed change answers 2xx although nothing can be published (every publish after
    commit is robust and logged); once Redis is back the sweep re-sends the lost advances."""
    actor = actor_for(operator)
    hold_file = tmp_path / "hold"
    hold_file.touch()
    gated, held = gate_flow(actor), held_flow(actor, hold_file)
    env = {"REDIS_URL": throwaway_broker.url, "FLOWGATE_SWEEP_INTERVAL_S": "1", **WORKER_ENV}
    celery_worker_factory(env=env)
    waiting = run_start(actor=actor, automation=gated)
    slow = run_start(actor=actor, automation=held)
    wait_for(
        lambda: (
            Run.objects.get(pk=waiting.pk).status == RunStatus.AWAITING_APPROVAL
            and RunNode.objects.filter(run=slow, state=NodeState.RUNNING)
            .exclude(started_at=None)
            .exists()
        ),
        timeout=30,
        message="the runs did not reach their gate / their held node",
    )

    throwaway_broker.stop()
    api = "/api/automations/v2"
    decided = reviewer.client().post(
        f"{api}/runs/{waiting.run_id}/gate", {"decision": "approve"}, format="json"
    )
    paused = operator.client().post(f"{api}/runs/{slow.run_id}/pause", {}, format="json")
    started = operator.client().post(f"{api}/gated/run_now")
    assert (decided.status_code, paused.status_code, started.status_code) == (200, 200, 201)
    fresh = Run.objects.get(run_id=started.json()["run"]["run_id"])
    assert Run.objects.get(pk=waiting.pk).status == RunStatus.QUEUED  # committed, not advanced
    assert Run.objects.get(pk=slow.pk).status == RunStatus.PAUSED
    assert fresh.status == RunStatus.QUEUED

    throwaway_broker.start()  # empty: whatever was published before the stop is gone too
    hold_file.unlink()  # a fenced attempt still executing finishes now: it must change nothing
    # The worker's consumer does not survive losing Redis (kombu fails restoring its unacked
    # messages: "Unrecoverable error"), so a supervisor starts it again, as here.
    celery_worker_factory(env=env)
    time.sleep(1.2)  # the queued runs are idle for longer than the sweep interval
    tasks.sweep_runs.delay()  # what beat sends every FLOWGATE_SWEEP_INTERVAL_S
    wait_for(
        lambda: Run.objects.get(pk=waiting.pk).status == RunStatus.COMPLETED,
        timeout=60,
        message="the approved run did not complete after the broker came back",
    )
    tasks.sweep_runs.delay()  # the run started during the outage waits at its gate next
    wait_for(
        lambda: Run.objects.get(pk=fresh.pk).status == RunStatus.AWAITING_APPROVAL,
        timeout=60,
        message="the run started during the outage did not run after the broker came back",
    )
    assert completions(waiting) == {"draft": 1, "publish": 1}
    assert Run.objects.get(pk=slow.pk).status == RunStatus.PAUSED
    assert completions(slow) == {}
