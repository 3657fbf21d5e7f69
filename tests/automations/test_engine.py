"""The run engine end to end: a real Celery worker process, PostgreSQL and Redis (no eager mode).

Every test commits its data (`transaction=True`) because the worker is another process.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from automations import tasks
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus
from automations.runs.control import run_pause
from automations.services import automation_create, run_start
from automations.workspace_files import workspace_dir
from governance.actors import Actor
from governance.models import Membership
from tests.support.engine import AGENTS, agent, finished, sleeper
from tests.support.nodekinds import WORKER_ENV
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("node_kinds")]


@pytest.fixture
def actor(operator) -> Actor:
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user=operator.user
    )
    return Actor.for_member(membership)


def start(actor, nodes, *, max_parallel=1, automation_id="flow"):
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": automation_id,
            "name": "Flow",
            "agents": AGENTS,
            "flow": {"nodes": nodes},
            "execution": {"max_parallel": max_parallel},
        },
    )
    return run_start(actor=actor, automation=automation)


def events(run) -> list[tuple[str, dict]]:
    return list(
        LifecycleEvent.objects.filter(run=run).order_by("at", "id").values_list("event", "metadata")
    )


def test_three_node_flow_completes(actor, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    run = start(actor, [agent("a", prompt="Write A"), agent("b", "a"), agent("c", "b")])
    run = finished(run)
    assert run.status == RunStatus.COMPLETED, run.detail
    assert run.started_at and run.finished_at
    nodes = {n.node_id: n for n in RunNode.objects.filter(run=run)}
    assert all(n.state == NodeState.COMPLETED and n.attempts == 1 for n in nodes.values())
    text = nodes["a"].output["content"]["text"]
    assert "Write A" in text and "t1" in text and "echo-1" in text
    names = [e for e, _ in events(run)]
    assert names.count("node_started") == 3 and names.count("node_completed") == 3
    assert names[-1] == "run_completed"


def test_branches_run_in_parallel_up_to_max_parallel(actor, celery_worker_factory):
    celery_worker_factory(concurrency=4, env=WORKER_ENV)
    branches = [sleeper(f"b{n}", "root", seconds=1.0) for n in range(4)]
    run = start(
        actor,
        [
            sleeper("root", seconds=0.1),
            *branches,
            sleeper("join", *[b["node_id"] for b in branches], seconds=0.1),
        ],
        max_parallel=2,
    )
    run = finished(run, timeout=40)
    assert run.status == RunStatus.COMPLETED, run.detail
    spans = [
        (o["content"]["started"], o["content"]["finished"])
        for o in RunNode.objects.filter(run=run, node_id__startswith="b").values_list(
            "output", flat=True
        )
    ]
    overlap = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
    assert overlap == 2  # parallel, but never more than max_parallel


def test_gate_opens_only_after_the_other_branch_finished(actor, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    gate = {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["a"],
        "gate": {"decisions": ["approve", "cancel"]},
    }
    run = start(
        actor,
        [agent("a"), gate, sleeper("side", seconds=1.5), agent("after", "approval")],
        max_parallel=2,
    )
    run = finished(run)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert run.detail == "awaiting approval for gate `approval`"
    order = [(e, m.get("node_id")) for e, m in events(run)]
    assert order.index(("node_completed", "side")) < order.index(
        ("approval_gate_opened", "approval")
    )
    gate_row = run.gates.get()
    assert (gate_row.node_id, gate_row.round, gate_row.status) == ("approval", 1, "open")
    assert gate_row.expires_at > gate_row.requested_at
    assert RunNode.objects.get(run=run, node_id="after").state == NodeState.PENDING


def test_failing_node_retries_then_fails_the_run(actor, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    failing = {"node_id": "flaky", "kind": "fail", "retry": {"max_attempts": 3, "backoff_s": 0.2}}
    run = finished(
        start(actor, [agent("a"), dict(failing, depends_on=["a"]), agent("never", "flaky")])
    )
    assert run.status == RunStatus.FAILED
    assert run.last_failure["node_id"] == "flaky"
    assert run.last_failure["failure_kind"] == "test_failure"
    assert "attempt 3" in run.last_failure["reason"]
    node = RunNode.objects.get(run=run, node_id="flaky")
    assert (node.state, node.attempts) == (NodeState.FAILED, 3)
    failures = [m["will_retry"] for e, m in events(run) if e == "node_failed"]
    assert failures == [True, True, False]
    assert RunNode.objects.get(run=run, node_id="never").state == NodeState.PENDING


def test_pause_during_a_node_discards_its_late_result(actor, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    run = start(actor, [sleeper("slow", seconds=2.0), agent("next", "slow")])
    wait_for(
        lambda: RunNode.objects.filter(run=run, node_id="slow", started_at__isnull=False).exists(),
        timeout=20,
    )
    run_pause(
        actor=actor, run=Run.objects.select_related("automation").get(pk=run.pk), reason="hold on"
    )
    wait_for(
        lambda: LifecycleEvent.objects.filter(run=run, event="node_result_discarded").exists(),
        timeout=20,
    )
    run.refresh_from_db()
    assert (run.status, run.pause_reason) == (RunStatus.PAUSED, "hold on")
    slow = RunNode.objects.get(run=run, node_id="slow")
    assert slow.state == NodeState.PENDING and slow.output is None
    assert RunNode.objects.get(run=run, node_id="next").attempts == 0


def test_killed_worker_ends_paused_by_the_stale_sweep(actor, celery_worker_factory):
    worker = celery_worker_factory(env=WORKER_ENV)
    run = start(actor, [sleeper("stuck", seconds=60, retry={"max_attempts": 2})])
    wait_for(
        lambda: RunNode.objects.filter(run=run, node_id="stuck", started_at__isnull=False).exists(),
        timeout=20,
    )
    worker.kill()
    sweeper = celery_worker_factory(env={**WORKER_ENV, "FLOWGATE_STALE_AFTER_S": "1"})
    assert sweeper.alive

    time.sleep(1.5)
    tasks.sweep_runs.delay()
    run = wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.PAUSED).first(), timeout=20
    )
    assert run.pause_reason == "stale_no_provider_activity"
    assert run.stop_kind == "stale_reaped"
    stuck = RunNode.objects.get(run=run, node_id="stuck")
    assert stuck.state == NodeState.PENDING
    assert stuck.output["status"] == "needs_repair"
    assert stuck.attempt_token is None


class _Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"accepted": true}')

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("allowlisted", [True, False])
def test_http_node_calls_only_allowlisted_hosts(
    actor, celery_worker_factory, receiver, allowlisted
):
    env = {**WORKER_ENV, "FLOWGATE_HTTP_ALLOWED_HOSTS": "127.0.0.1" if allowlisted else ""}
    celery_worker_factory(env=env)
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    run = finished(
        start(
            actor,
            [
                agent("a"),
                {"node_id": "notify", "kind": "http", "depends_on": ["a"], "http": {"url": url}},
            ],
        )
    )
    notify = RunNode.objects.get(run=run, node_id="notify")
    if allowlisted:
        assert run.status == RunStatus.COMPLETED, run.detail
        assert notify.output["content"]["body"] == {"accepted": True}
        assert _Recorder.received[0]["node_id"] == "notify"
        assert "a" in _Recorder.received[0]["upstream_outputs"]
    else:
        assert run.status == RunStatus.FAILED
        assert run.last_failure["failure_kind"] == "http_refused"
        assert _Recorder.received == []


def test_an_allowlist_refusal_fails_the_node_on_its_first_attempt(
    actor, celery_worker_factory, receiver
):
    """Issue 13: a refused host was retried with backoff while the run showed `running` and
    `detail: null`; a configuration error now fails the node at once with its message."""
    celery_worker_factory(env={**WORKER_ENV, "FLOWGATE_HTTP_ALLOWED_HOSTS": ""})
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    notify = {
        "node_id": "notify",
        "kind": "http",
        "http": {"url": url},
        "retry": {"max_attempts": 5, "backoff_s": 60},
    }

    run = finished(start(actor, [notify]), timeout=15)

    node = RunNode.objects.get(run=run, node_id="notify")
    assert run.status == RunStatus.FAILED
    assert (node.state, node.attempts) == (NodeState.FAILED, 1)
    assert "FLOWGATE_HTTP_ALLOWED_HOSTS is empty" in run.last_failure["reason"]
    assert run.last_failure["failure_kind"] == "http_refused"
    assert _Recorder.received == []


@pytest.mark.parametrize("auto_approve", [True, False])
def test_handoff_artifact_written_on_completion(
    actor, celery_worker_factory, workspaces_dir, auto_approve
):
    """The artifact lands under the workspace root, a path relative to the workspace's own
    directory."""
    celery_worker_factory(env={**WORKER_ENV, "FLOWGATE_WORKSPACES_DIR": str(workspaces_dir)})
    root = workspace_dir(actor.workspace) / "reports"
    producer = dict(
        agent("report"), handoff={"artifact_type": "report", "target_automation_id": "publisher"}
    )
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "producer",
            "name": "Producer",
            "agents": AGENTS,
            "flow": {"nodes": [producer]},
            "workspace_root": "reports",
            "handoff_config": {"auto_approve": auto_approve},
        },
    )
    run = finished(run_start(actor=actor, automation=automation))
    assert run.status == RunStatus.COMPLETED, run.detail
    wait_for(lambda: LifecycleEvent.objects.filter(run=run, event="handoff_written").exists())
    folder = "approved" if auto_approve else "inbox"
    (path,) = (root / "shared" / "handoffs" / folder).glob("hoff-*.json")
    artifact = json.loads(path.read_text())
    assert artifact["source_run_id"] == run.run_id
    assert artifact["source_node_id"] == "report"
    assert artifact["artifact_type"] == "report"
    assert artifact["target_automation_id"] == "publisher"
    assert len(artifact["content_digest"]) == 64
    other = "inbox" if auto_approve else "approved"
    assert not list((root / "shared" / "handoffs" / other).glob("*.json"))
