"""Run control against the real engine: a Celery worker process, PostgreSQL and Redis.

Pause and cancel while a node executes discard its late result; resume re-executes it; a repair
changes what runs next (the echo provider shows the prompt, template and model it was given);
concurrent operator actions serialise on the run lock.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from approvals.models import Gate, GateStatus
from automations import scheduling
from automations.models import Automation, LifecycleEvent, NodeState, Run, RunNode, RunStatus
from automations.runs import control
from automations.services import automation_snapshot
from governance.errors import Conflict
from governance.models import AuditEvent
from tests.factories import actor_for, make_run
from tests.support.engine import AGENTS, agent, finished, sleeper
from tests.support.nodekinds import WORKER_ENV
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("node_kinds")]

API = "/api/automations/v2"


def start(member, nodes, *, automation_id="flow") -> Run:
    client = member.client()
    created = client.post(
        API,
        {
            "automation_id": automation_id,
            "name": "Flow",
            "agents": AGENTS,
            "flow": {"nodes": nodes},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    started = client.post(f"{API}/{automation_id}/run_now")
    assert started.status_code == 201, started.json()
    return Run.objects.get(run_id=started.json()["run"]["run_id"])


def executing(run, node_id):
    wait_for(
        lambda: RunNode.objects.filter(
            run=run, node_id=node_id, state=NodeState.RUNNING, started_at__isnull=False
        ).exists(),
        timeout=20,
        message=f"{node_id} to start executing",
    )


def discarded(run):
    return wait_for(
        lambda: LifecycleEvent.objects.filter(run=run, event="node_result_discarded").first(),
        timeout=20,
        message="the late result to be discarded",
    )


def audits(run) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            event_type__startswith="automation.run.", payload__runID=run.run_id
        )
        .order_by("seq")
        .values_list("event_type", flat=True)
    )


def test_cancel_during_a_node_discards_its_late_result(operator, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    run = start(operator, [sleeper("slow", seconds=2.0), agent("next", "slow")])
    executing(run, "slow")
    response = operator.client().post(
        f"{API}/runs/{run.run_id}/cancel", {"reason": "stop now"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert discarded(run).reason == "run is cancelled"
    run.refresh_from_db()
    assert (run.status, run.stop_kind, run.detail) == (
        RunStatus.CANCELLED,
        "operator_stopped",
        "stop now",
    )
    slow = RunNode.objects.get(run=run, node_id="slow")
    assert (slow.state, slow.output, slow.attempt_token) == (NodeState.PENDING, None, None)
    assert RunNode.objects.get(run=run, node_id="next").attempts == 0
    assert audits(run) == ["automation.run.cancelled"]


def test_pause_discards_the_late_result_and_resume_reexecutes(operator, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    run = start(operator, [sleeper("slow", seconds=1.5), agent("next", "slow")])
    executing(run, "slow")
    client = operator.client()
    assert client.post(f"{API}/runs/{run.run_id}/pause").status_code == 200
    assert discarded(run).reason == "run is paused"
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert RunNode.objects.get(run=run, node_id="slow").output is None

    assert client.post(f"{API}/runs/{run.run_id}/resume").status_code == 200
    run = finished(run, timeout=40)
    assert run.status == RunStatus.COMPLETED, run.detail
    slow = RunNode.objects.get(run=run, node_id="slow")
    assert slow.attempts == 2 and slow.output["content"]["attempt"] == 2
    assert RunNode.objects.get(run=run, node_id="next").state == NodeState.COMPLETED
    assert audits(run) == ["automation.run.paused", "automation.run.resumed"]


def awaiting_round(run, round_):
    return wait_for(
        lambda: Run.objects.filter(
            pk=run.pk,
            status=RunStatus.AWAITING_APPROVAL,
            gates__round=round_,
            gates__status=GateStatus.OPEN,
        ).first(),
        timeout=30,
        message=f"gate round {round_} to open",
    )


def test_repair_changes_what_runs_next(operator, celery_worker_factory):
    celery_worker_factory(env=WORKER_ENV)
    gate = {
        "node_id": "approval",
        "kind": "approval",
        "depends_on": ["b"],
        "gate": {"decisions": ["approve", "rework", "cancel"]},
    }
    run = start(operator, [agent("a", prompt="Write A v1"), agent("b", "a"), gate])
    awaiting_round(run, 1)
    before = {n.node_id: n.output for n in RunNode.objects.filter(run=run)}
    assert before["a"]["prompt"] == "Write A v1" and before["a"]["model"] == "echo-1"

    response = operator.client().post(
        f"{API}/runs/{run.run_id}/repair",
        {
            "node_id": "a",
            "prompt": "Write A v2",
            "template_id": "t2",
            "model_policy": {"provider": "echo", "model": "echo-2"},
            "reason": "sharper prompt, newer model",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["automation"]["version"] == 2

    run = awaiting_round(run, 2)
    after = {n.node_id: n for n in RunNode.objects.filter(run=run)}
    a = after["a"].output
    assert (a["prompt"], a["template_id"], a["model"]) == ("Write A v2", "t2", "echo-2")
    assert "prompt: Write A v2" in a["content"]["text"]
    assert "template: t2" in a["content"]["text"] and "model: echo-2" in a["content"]["text"]
    assert after["a"].attempts == 1  # repair resets attempts
    b = after["b"].output
    assert (b["template_id"], b["model"]) == ("t2", "echo-2")  # the agent is shared
    assert b["prompt_digest"] != before["b"]["prompt_digest"]  # it saw a's new output

    automation = Automation.objects.select_related("created_by").get(automation_id="flow")
    assert automation.version == 2
    assert run.automation_snapshot == automation_snapshot(automation)
    assert run.automation_snapshot["flow"]["nodes"][0]["metadata"]["builder"]["prompt"] == (
        "Write A v2"
    )
    gates = list(Gate.objects.filter(run=run).order_by("round").values_list("round", "status"))
    assert gates == [(1, GateStatus.SUPERSEDED), (2, GateStatus.OPEN)]
    repaired = LifecycleEvent.objects.get(run=run, event="run_step_repaired")
    assert repaired.reason == "sharper prompt, newer model"
    assert repaired.metadata["previous_template_id"] == "t1"
    assert audits(run) == ["automation.run.repaired"]


def test_concurrent_resumes_exactly_one_wins(operator, monkeypatch):
    """Eight threads resume one paused run at once: the run lock lets exactly one through."""
    monkeypatch.setattr(scheduling, "advance_now", lambda run_id, **kw: None)
    monkeypatch.setattr(scheduling, "revoke_now", lambda task_ids: None)
    actor = actor_for(operator)
    run = make_run(actor)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def resume():
        try:
            barrier.wait()
            control.run_resume(actor=actor, run=run, reason="go")
            outcomes.append("resumed")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["AUTOMATION_V2_RUN_NOT_PAUSED"] * 7 + ["resumed"]
    assert audits(run) == ["automation.run.resumed"]
    assert LifecycleEvent.objects.filter(run=run, event="run_resumed").count() == 1
