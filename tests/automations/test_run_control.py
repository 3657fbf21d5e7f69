"""Run-control services (`automations.runs.control` and `.repair`): the reference notes §9
items 33-53 ported, with SPEC §10's corrections (every action authorised and audited, gates
superseded, late results fenced). Item 32 (the automation-level pause) belongs to
`automation_control`.

Runs are put into the state a test needs directly (status, node states, outputs, attempts), as
the original's tests do with their checkpoints; the engine itself is exercised against a real
worker in `test_run_control_engine.py`.
"""

from __future__ import annotations

import pytest

from approvals.models import Gate, GateStatus
from automations import scheduling
from automations.models import (
    Automation,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from automations.runs import control, repair
from governance.actors import Actor
from governance.errors import Conflict, InvalidRequest, NotFound
from governance.events import events_committed
from governance.models import AuditEvent
from tests.factories import AGENTS, BASIC, actor_for, agent_node, gate_row, make_run, output

pytestmark = pytest.mark.django_db

# The reference's "branched" flow: research → {analysis, draft} → publish.
BRANCHED = [
    agent_node("research"),
    agent_node("analysis", "research"),
    agent_node("draft", "research"),
    agent_node("publish", "analysis", "draft"),
]


@pytest.fixture
def op(operator) -> Actor:
    return actor_for(operator)


def node(run, node_id) -> RunNode:
    return RunNode.objects.get(run=run, node_id=node_id)


def states(run) -> dict[str, tuple[str, int, object]]:
    return {n.node_id: (n.state, n.attempts, n.output) for n in RunNode.objects.filter(run=run)}


def last_event(run, name) -> LifecycleEvent:
    return LifecycleEvent.objects.filter(run=run, event=name).latest("id")


def run_audits(run) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            event_type__startswith="automation.run.", payload__runID=run.run_id
        ).exclude(event_type="automation.run_started")
    )


C, P, R, B, F = (
    NodeState.COMPLETED,
    NodeState.PENDING,
    NodeState.RUNNING,
    NodeState.BLOCKED,
    NodeState.FAILED,
)


# --- pause / resume / cancel (items 33-35) --------------------------------------------------


class TestPause:
    def test_pause_fences_running_nodes_and_revokes_after_commit(
        self, op, monkeypatch, django_capture_on_commit_callbacks
    ):
        run = make_run(op, status=RunStatus.RUNNING, nodes={"draft": (R, 1, None)})
        RunNode.objects.filter(run=run, node_id="draft").update(
            task_id="task-1", attempt_token="7b0e1d8e-2f7c-4f43-9f4c-2f0e7c3b6a11"
        )
        revoked = []
        monkeypatch.setattr(scheduling, "revoke_now", revoked.extend)
        with django_capture_on_commit_callbacks(execute=True):
            paused = control.run_pause(actor=op, run=run, reason="maintenance window")
        assert (paused.status, paused.pause_reason) == (RunStatus.PAUSED, "maintenance window")
        draft = node(run, "draft")
        assert (draft.state, draft.attempts, draft.attempt_token, draft.task_id) == (
            P,
            1,
            None,
            "",
        )
        assert revoked == ["task-1"]
        names = list(LifecycleEvent.objects.filter(run=run).values_list("event", flat=True))
        assert names[-2:] == ["run_pause_requested", "run_paused"]
        paused_event = last_event(run, "run_paused")
        assert paused_event.reason == "maintenance window"
        assert paused_event.metadata["fenced_nodes"] == ["draft"]
        (audit,) = run_audits(run)
        assert audit.event_type == "automation.run.paused"
        assert audit.payload["fromStatus"] == "running"

    def test_default_reason(self, op):
        run = make_run(op, status=RunStatus.QUEUED)
        assert control.run_pause(actor=op, run=run, reason="   ").pause_reason == (
            "paused by operator"
        )

    def test_resume_clears_pause_and_stop_fields(self, op, django_capture_on_commit_callbacks):
        run = make_run(
            op,
            pause_reason="hold",
            stop_kind=StopKind.GUARDRAIL_STOPPED,
            stop_reason="budget",
            nodes={"draft": (C, 1, output())},
        )
        with django_capture_on_commit_callbacks() as callbacks:
            resumed = control.run_resume(actor=op, run=run, reason=None)
        resumed.refresh_from_db()
        assert resumed.status == RunStatus.QUEUED
        assert resumed.resume_reason == "resumed by operator"
        assert (resumed.pause_reason, resumed.stop_kind, resumed.stop_reason) == ("", "", "")
        assert node(run, "draft").output == output()  # the checkpoint is untouched
        assert last_event(run, "run_resumed").reason == "resumed by operator"
        # The run event's stamp, then execution (nothing to revoke, so no revoke).
        assert [c.func for c in callbacks] == [events_committed, scheduling.advance_now]


class TestCancel:
    def test_cancel_records_operator_stop_kind(self, op):
        run = make_run(op, status=RunStatus.RUNNING, nodes={"draft": (R, 1, None)})
        cancelled = control.run_cancel(
            actor=op, run=run, reason="kill switch triggered by operator"
        ).run
        cancelled.refresh_from_db()
        assert cancelled.status == RunStatus.CANCELLED
        assert cancelled.stop_kind == StopKind.OPERATOR_STOPPED
        assert cancelled.stop_reason == cancelled.detail == "kill switch triggered by operator"
        assert cancelled.finished_at is not None
        assert node(run, "draft").state == P
        stopped = last_event(run, "run_stopped")
        assert (stopped.reason, stopped.stop_kind) == (
            "kill switch triggered by operator",
            StopKind.OPERATOR_STOPPED,
        )
        assert [a.event_type for a in run_audits(run)] == ["automation.run.cancelled"]

    @pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
    def test_cancel_is_idempotent_for_terminal_runs(self, op, status):
        run = make_run(op, status=status, detail="all done")
        version = run.version
        result = control.run_cancel(actor=op, run=run)
        assert result.already_terminal
        run.refresh_from_db()
        assert (run.status, run.detail, run.version) == (status, "all done", version)
        assert run_audits(run) == []
        assert not LifecycleEvent.objects.filter(run=run, event="run_stopped").exists()

    @pytest.mark.parametrize("status", ["blocked", "awaiting_approval", "paused", "queued"])
    def test_cancel_non_terminal(self, op, status):
        run = make_run(op, status=status)
        assert control.run_cancel(actor=op, run=run).run.status == RunStatus.CANCELLED
        assert last_event(run, "run_stopped").reason == "cancelled by operator"

    def test_cancel_supersedes_the_open_gate(self, op):
        run = make_run(
            op,
            status=RunStatus.AWAITING_APPROVAL,
            nodes={"draft": (C, 1, output()), "review": (C, 1, output())},
        )
        gate = gate_row(run)
        control.run_cancel(actor=op, run=run, reason="scope drifted")
        gate.refresh_from_db()
        assert gate.status == GateStatus.SUPERSEDED and gate.closed_at is not None
        assert last_event(run, "run_stopped").metadata["superseded_gates"] == [gate.id]


# --- recover (items 36-46) --------------------------------------------------------------------


class TestRecover:
    def test_from_pause_preserves_completed_state(self, op):
        run = make_run(
            op,
            pause_reason="paused by operator",
            nodes={"draft": (C, 2, output())},
        )
        gate = gate_row(run)
        recovered = control.run_recover(actor=op, run=run, reason="operator recovered pause")
        recovered.refresh_from_db()
        assert recovered.status == RunStatus.QUEUED
        assert recovered.resume_reason == recovered.detail == "operator recovered pause"
        assert states(run) == {
            "draft": (C, 2, output()),
            "review": (P, 0, None),
            "approval": (P, 0, None),
        }
        assert Gate.objects.get(pk=gate.pk).status == GateStatus.SUPERSEDED
        event = last_event(run, "run_recovered_from_pause")
        assert event.reason == "operator recovered pause"
        assert [a.event_type for a in run_audits(run)] == ["automation.run.recovered"]

    def test_from_pause_default_reason(self, op):
        run = make_run(op)
        assert control.run_recover(actor=op, run=run).resume_reason == (
            "recovered from paused state by operator"
        )

    def test_from_stale_pause_clears_pending_outputs_and_attempts(self, op):
        stale = output("needs_repair", failure_kind="stale_no_provider_activity")
        run = make_run(
            op,
            pause_reason="stale_no_provider_activity",
            stop_kind=StopKind.STALE_REAPED,
            nodes={
                "draft": (C, 2, output()),
                "review": (P, 2, stale),
                "approval": (P, 1, None),
            },
        )
        recovered = control.run_recover(actor=op, run=run, reason="recover stale")
        recovered.refresh_from_db()
        assert states(run) == {
            "draft": (C, 2, output()),
            "review": (P, 0, None),
            "approval": (P, 0, None),
        }
        assert (recovered.pause_reason, recovered.stop_kind) == ("", "")

    def test_completed_run_with_blocked_node_evidence(self, op):
        run = make_run(
            op,
            status=RunStatus.COMPLETED,
            nodes={
                "draft": (C, 1, output()),
                "review": (C, 1, output("blocked")),
                "approval": (C, 1, output()),
            },
        )
        recovered = control.run_recover(actor=op, run=run, reason="retry blocked review")
        recovered.refresh_from_db()
        assert recovered.status == RunStatus.QUEUED and recovered.finished_at is None
        assert recovered.resume_reason == "retry blocked review"
        assert states(run)["draft"] == (C, 1, output())
        assert states(run)["review"] == (P, 0, None)
        assert states(run)["approval"] == (P, 0, None)

    def test_completed_run_without_blocked_evidence_is_not_recoverable(self, op):
        run = make_run(op, status=RunStatus.COMPLETED, nodes={"draft": (C, 1, output())})
        with pytest.raises(Conflict) as caught:
            control.run_recover(actor=op, run=run)
        assert caught.value.code == "AUTOMATION_V2_RUN_NOT_RECOVERABLE"
        assert caught.value.extra == {"runID": run.run_id}

    def test_failed_branch_preserves_completed_sibling(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            last_failure={"node_id": "draft", "reason": "boom"},
            nodes={
                "research": (C, 1, output()),
                "analysis": (C, 1, output()),
                "draft": (F, 3, output("failed")),
            },
        )
        recovered = control.run_recover(actor=op, run=run, reason="recover failed draft")
        recovered.refresh_from_db()
        assert recovered.last_failure is None
        assert states(run) == {
            "research": (C, 1, output()),
            "analysis": (C, 1, output()),
            "draft": (P, 0, None),
            "publish": (P, 0, None),
        }
        event = last_event(run, "run_recovered")
        assert event.metadata["reset_nodes"] == ["draft", "publish"]

    def test_failed_run_resets_stale_blocked_nodes(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            last_failure={"node_id": "draft", "reason": "boom"},
            nodes={
                "research": (C, 1, output()),
                "analysis": (B, 1, output("blocked")),
                "draft": (F, 2, output("failed")),
            },
        )
        control.run_recover(actor=op, run=run)
        after = states(run)
        assert after["research"] == (C, 1, output())
        assert after["analysis"] == after["draft"] == after["publish"] == (P, 0, None)

    def test_failed_node_output_when_last_failure_missing(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            nodes={
                "research": (C, 1, output()),
                "analysis": (C, 1, output()),
                "draft": (C, 1, output("verify_failed")),
            },
        )
        control.run_recover(actor=op, run=run)
        after = states(run)
        assert after["draft"] == after["publish"] == (P, 0, None)
        assert after["analysis"] == (C, 1, output())

    def test_blocked_nodes_when_failure_context_missing(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            detail="automation run interrupted by server restart",
            nodes={
                "research": (C, 1, output()),
                "analysis": (C, 1, output()),
                "draft": (C, 1, output()),
                "publish": (B, 1, output("blocked")),
            },
        )
        recovered = control.run_recover(actor=op, run=run)
        recovered.refresh_from_db()
        assert states(run)["publish"] == (P, 0, None)
        assert states(run)["draft"] == (C, 1, output())
        assert recovered.last_failure is None

    def test_runtime_context_missing_failure_detail(self, op):
        run = make_run(
            op,
            status=RunStatus.FAILED,
            detail="runtime context partition missing for automation run",
            last_failure={"node_id": "runtime_context", "reason": "missing"},
        )
        recovered = control.run_recover(actor=op, run=run, reason="context restored")
        recovered.refresh_from_db()
        assert (recovered.status, recovered.detail) == (RunStatus.QUEUED, "context restored")
        assert recovered.last_failure is None
        assert set(states(run)) == {"draft", "review", "approval"}

    def test_failed_without_context_is_409(self, op):
        run = make_run(op, status=RunStatus.FAILED, detail="something odd")
        with pytest.raises(Conflict) as caught:
            control.run_recover(actor=op, run=run)
        assert caught.value.code == "AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING"
        assert caught.value.message == "Run has no recoverable failed node"

    def test_blocked_without_blocked_nodes_is_409(self, op):
        run = make_run(op, status=RunStatus.BLOCKED)
        with pytest.raises(Conflict) as caught:
            control.run_recover(actor=op, run=run)
        assert caught.value.code == "AUTOMATION_V2_RUN_BLOCKED_CONTEXT_MISSING"
        assert caught.value.message == "Run has no recoverable blocked node"

    def test_from_pause_preserves_branched_state(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            nodes={"research": (C, 1, output()), "analysis": (C, 1, output())},
        )
        control.run_recover(actor=op, run=run)
        after = states(run)
        assert [n for n, s in after.items() if s[0] == C] == ["research", "analysis"]
        assert after["draft"] == after["publish"] == (P, 0, None)
        assert last_event(run, "run_recovered_from_pause")

    @pytest.mark.parametrize(
        "detail",
        [
            "automation run missing successful external action receipt for outbound node `publish`",
            "automation run deliverable `customer.incident_reported` lacks current-run output "
            "evidence",
        ],
        ids=["completion-assertion-names-the-node", "deliverable-assertion-resets-the-leaf"],
    )
    def test_run_level_assertion_resets_publish_only(self, op, detail):
        done = {n["node_id"]: (C, 1, output()) for n in BRANCHED}
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            detail=detail,
            nodes=done,
        )
        control.run_recover(actor=op, run=run)
        after = states(run)
        assert after["publish"] == (P, 0, None)
        assert all(after[n] == (C, 1, output()) for n in ("research", "analysis", "draft"))
        assert last_event(run, "run_recovered").metadata["reset_nodes"] == ["publish"]

    def test_failed_run_with_two_failed_branches_resets_both(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            last_failure={"node_id": "analysis", "reason": "boom"},
            nodes={
                "research": (C, 1, output()),
                "analysis": (F, 1, output("failed")),
                "draft": (F, 1, output("failed")),
            },
        )
        control.run_recover(actor=op, run=run)
        assert {n for n, s in states(run).items() if s[0] == F} == set()


# --- repair (items 47-48) ---------------------------------------------------------------------


class TestRepair:
    def test_preserves_completed_sibling_branch(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            last_failure={"node_id": "draft", "reason": "boom"},
            nodes={
                "research": (C, 1, output()),
                "analysis": (C, 1, output()),
                "draft": (F, 2, output("failed")),
            },
        )
        result = repair.run_repair(
            actor=op,
            run=run,
            node_id="draft",
            prompt="Write draft with clarified branch requirements",
            reason="clarify the draft",
        )
        repaired = result.run
        repaired.refresh_from_db()
        assert repaired.status == RunStatus.QUEUED and repaired.last_failure is None
        after = states(run)
        assert after["research"] == after["analysis"] == (C, 1, output())
        assert after["draft"] == after["publish"] == (P, 0, None)
        event = last_event(run, "run_step_repaired")
        assert event.reason == "clarify the draft"
        assert event.metadata["node_id"] == "draft"
        assert event.metadata["new_prompt"] == "Write draft with clarified branch requirements"
        assert event.metadata["reset_nodes"] == ["draft", "publish"]

    def test_resets_descendants_and_records_diff(self, op):
        run = make_run(
            op,
            status=RunStatus.FAILED,
            last_failure={"node_id": "draft", "reason": "boom"},
            nodes={
                "draft": (F, 3, output("failed")),
                "review": (P, 2, None),
                "approval": (P, 1, None),
            },
        )
        policy = {"provider": "echo", "model": "echo-anthropic"}
        result = repair.run_repair(
            actor=op,
            run=run,
            node_id="draft",
            prompt="Write draft v2",
            template_id="template-b",
            model_policy=policy,
        )
        assert states(run) == dict.fromkeys(("draft", "review", "approval"), (P, 0, None))
        meta = last_event(run, "run_step_repaired").metadata
        assert (meta["previous_prompt"], meta["new_prompt"]) == ("Write draft v1", "Write draft v2")
        assert (meta["previous_template_id"], meta["new_template_id"]) == (
            "template-a",
            "template-b",
        )
        assert meta["previous_model_policy"] == AGENTS[0]["model_policy"]
        assert meta["new_model_policy"] == policy
        assert meta["reset_only"] is False
        automation = Automation.objects.get(pk=run.automation_id)
        assert automation.version == 2 == result.automation.version
        assert automation.flow["nodes"][0]["metadata"]["builder"]["prompt"] == "Write draft v2"
        assert automation.agents[0]["template_id"] == "template-b"
        snapshot = Run.objects.get(pk=run.pk).automation_snapshot
        assert snapshot["version"] == 2
        assert snapshot["flow"] == automation.flow and snapshot["agents"] == automation.agents
        assert Run.objects.get(pk=run.pk).resume_reason == (
            "repaired node `draft` and reset affected subtree"
        )
        (audit,) = run_audits(run)
        assert audit.event_type == "automation.run.repaired"
        assert audit.payload["automationVersion"] == 2
        assert audit.payload["automationChanged"] == ["flow", "agents"]
        # One combined audit event: no separate `automation.updated`.
        assert not AuditEvent.objects.filter(event_type="automation.updated").exists()

    def test_reset_only_repair_keeps_the_automation_version(self, op):
        run = make_run(op, status=RunStatus.CANCELLED, nodes={"draft": (C, 1, output())})
        repair.run_repair(actor=op, run=run, node_id="review")
        assert Automation.objects.get(pk=run.automation_id).version == 1
        assert last_event(run, "run_step_repaired").metadata["reset_only"] is True
        assert states(run)["draft"] == (C, 1, output())

    def test_awaiting_approval_repair_supersedes_the_gate(self, op):
        run = make_run(
            op,
            status=RunStatus.AWAITING_APPROVAL,
            nodes={"draft": (C, 1, output()), "review": (C, 1, output())},
        )
        gate = gate_row(run)
        repair.run_repair(actor=op, run=run, node_id="review", prompt="Review harder")
        assert Gate.objects.get(pk=gate.pk).status == GateStatus.SUPERSEDED

    @pytest.mark.parametrize("status", ["queued", "running", "pausing"])
    def test_not_while_the_engine_may_run(self, op, status):
        run = make_run(op, status=status)
        with pytest.raises(Conflict) as caught:
            repair.run_repair(actor=op, run=run, node_id="draft", prompt="x")
        assert caught.value.code == "AUTOMATION_V2_RUN_NOT_REPAIRABLE"
        assert caught.value.message == (
            "Run must be paused, failed, awaiting approval, or cancelled before repair"
        )
        assert Automation.objects.get(pk=run.automation_id).version == 1

    def test_errors_in_order(self, op):
        run = make_run(op)
        with pytest.raises(InvalidRequest) as required:
            repair.run_repair(actor=op, run=run, node_id="  ")
        assert required.value.code == "AUTOMATION_V2_REPAIR_NODE_REQUIRED"
        with pytest.raises(NotFound) as missing:
            repair.run_repair(actor=op, run=run, node_id="nope", prompt="x")
        assert (missing.value.code, missing.value.extra) == (
            "AUTOMATION_V2_REPAIR_NODE_NOT_FOUND",
            {"nodeID": "nope"},
        )
        with pytest.raises(NotFound) as agentless:
            repair.run_repair(actor=op, run=run, node_id="approval", template_id="t")
        assert agentless.value.code == "AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND"
        # A failed repair changes nothing: no version, no run change, no audit.
        assert Automation.objects.get(pk=run.automation_id).version == 1
        assert Run.objects.get(pk=run.pk).status == RunStatus.PAUSED
        assert run_audits(run) == []

    def test_invalid_model_policy_is_refused_by_flow_validation(self, op):
        run = make_run(op)
        from governance.errors import InvalidFlow

        with pytest.raises(InvalidFlow):
            repair.run_repair(actor=op, run=run, node_id="draft", model_policy=["x"])
        assert Automation.objects.get(pk=run.automation_id).version == 1


# --- task retry / requeue / continue / reset preview (items 49-53) ----------------------------


class TestTaskOps:
    def test_retry_preserves_attempts_and_resets_subtree(self, op):
        run = make_run(
            op,
            status=RunStatus.BLOCKED,
            nodes={"draft": (C, 1, output()), "review": (B, 2, output("blocked"))},
        )
        result = repair.run_task_retry(actor=op, run=run, node_id="review")
        assert result.run.status == RunStatus.QUEUED
        after = states(run)
        assert after["draft"] == (C, 1, output())
        assert after["review"] == (P, 2, None)
        assert after["approval"] == (P, 0, None)
        assert result.extra == {
            "node_id": "review",
            "reset_nodes": ["approval", "review"],
            "cleared_outputs": ["review"],
        }
        event = last_event(run, "run_task_retried")
        assert event.metadata["node_id"] == "review"
        assert event.reason == "retried task `review` and reset affected subtree"
        assert [a.event_type for a in run_audits(run)] == ["automation.run.task_retried"]

    def test_requeue_preserves_attempts_and_resets_subtree(self, op):
        run = make_run(
            op,
            nodes={"draft": (C, 2, output()), "review": (C, 1, output())},
        )
        result = repair.run_task_requeue(actor=op, run=run, node_id="draft")
        after = states(run)
        assert after == {"draft": (P, 2, None), "review": (P, 1, None), "approval": (P, 0, None)}
        assert result.extra["reset_nodes"] == ["approval", "draft", "review"]
        assert result.extra["cleared_outputs"] == ["draft", "review"]
        assert last_event(run, "run_task_requeued").metadata["node_id"] == "draft"

    def test_retry_picks_up_the_current_automation(self, op):
        run = make_run(op, status=RunStatus.FAILED, nodes={"draft": (F, 1, output("failed"))})
        automation = Automation.objects.get(pk=run.automation_id)
        from automations.services import automation_update

        flow = {"nodes": [*BASIC, agent_node("notify", "approval")]}
        automation_update(actor=op, automation=automation, data={"flow": flow})  # op owns it
        repair.run_task_retry(actor=op, run=run, node_id="draft")
        assert set(states(run)) == {"draft", "review", "approval", "notify"}
        assert Run.objects.get(pk=run.pk).automation_snapshot["version"] == 2

    def test_unknown_node_is_404(self, op):
        run = make_run(op)
        with pytest.raises(NotFound) as caught:
            repair.run_task_retry(actor=op, run=run, node_id="nope")
        assert caught.value.code == "AUTOMATION_V2_TASK_NODE_NOT_FOUND"
        assert caught.value.extra == {"nodeID": "nope"}

    def test_reset_preview_reports_the_exact_subtree_and_writes_nothing(
        self, op, django_assert_num_queries
    ):
        run = make_run(op, nodes={"draft": (C, 1, output()), "review": (C, 1, output())})
        from automations import selectors

        loaded = selectors.run_get(op, run.run_id)
        before = (LifecycleEvent.objects.count(), AuditEvent.objects.count(), run.version)
        preview = repair.run_reset_preview(run=loaded, node_id="draft")
        assert preview == {
            "run_id": run.run_id,
            "node_id": "draft",
            "reset_nodes": ["approval", "draft", "review"],
            "cleared_outputs": ["draft", "review"],
            "preserves_upstream_outputs": True,
        }
        run.refresh_from_db()
        after = (LifecycleEvent.objects.count(), AuditEvent.objects.count(), run.version)
        assert before == after

    @pytest.mark.parametrize("status", [RunStatus.BLOCKED, RunStatus.COMPLETED])
    def test_continue_minimally_resets_the_blocked_node(self, op, status):
        run = make_run(
            op,
            status=status,
            last_failure={"node_id": "review", "reason": "blocked"},
            nodes={
                "draft": (C, 1, output()),
                "review": (C if status == RunStatus.COMPLETED else B, 2, output("blocked")),
                "approval": (C, 1, output()) if status == RunStatus.COMPLETED else (P, 0, None),
            },
        )
        result = repair.run_task_continue(actor=op, run=run, node_id="review")
        result.run.refresh_from_db()
        assert result.run.status == RunStatus.QUEUED and result.run.last_failure is None
        after = states(run)
        assert after["draft"] == (C, 1, output())
        assert after["review"] == (P, 0, None)
        assert result.extra == {"node_id": "review", "reset_nodes": ["review"]}
        meta = last_event(run, "run_task_continued").metadata
        assert meta["mode"] == "minimal_reset" and meta["reset_nodes"] == ["review"]

    def test_continue_refuses_a_node_that_is_not_blocked(self, op):
        run = make_run(op, status=RunStatus.BLOCKED, nodes={"draft": (C, 1, output())})
        for node_id in ("draft", "nope"):  # an unknown node is not blocked either (original order)
            with pytest.raises(Conflict) as caught:
                repair.run_task_continue(actor=op, run=run, node_id=node_id)
            assert caught.value.code == "AUTOMATION_V2_TASK_NOT_BLOCKED"
            assert caught.value.extra == {"runID": run.run_id, "nodeID": node_id}

    def test_continue_keeps_last_failure_of_another_node(self, op):
        run = make_run(
            op,
            BRANCHED,
            automation_id="branched",
            status=RunStatus.FAILED,
            last_failure={"node_id": "draft", "reason": "boom"},
            nodes={"research": (C, 1, output()), "analysis": (B, 1, output("blocked"))},
        )
        result = repair.run_task_continue(actor=op, run=run, node_id="analysis")
        result.run.refresh_from_db()
        assert result.run.last_failure == {"node_id": "draft", "reason": "boom"}
