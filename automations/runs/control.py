"""Operator actions on runs: pause, resume, cancel, recover (repair and the task actions are in
`automations.runs.repair`).

Every action goes through one primitive, `run_transition`, driven by the tables in
`automations.runs.transitions` and applied with `automations.runs.state`:

1. authorise: the operate permission on the run's automation (`governance.policy.authorize`;
   agents only on automations they created or hold a grant on; denials audited in their own
   committed transaction);
2. in one transaction, lock — in this order — the automation row (only for repair, which edits
   it; automation pause and `run_start` also lock the automation before runs), the run row, its
   node rows, its open gates, and last (inside `audit_record`) the audit chain head. The engine
   takes run → nodes too, so an action and an engine step serialise on the run row;
3. refuse a source status the table does not allow (409 with the table's code and `runID`);
4. fence in-flight node executions: running nodes go back to pending with `attempt_token` and
   `task_id` cleared, so `engine.node_result_accept` discards their late results (the attempt
   still counts);
5. apply the action's change, move the run to the table's target status (`state.run_move`),
   supersede any open gate when the run leaves `awaiting_approval` (through the gate-kind
   registry), record the lifecycle events and the audit event `automation.run.<verb>` — all
   committed together;
6. after commit, revoke the fenced Celery tasks and, when the run is `queued` again, schedule its
   execution (`automations.scheduling`).

Recover resets subtrees as repair does (`reset`, `automations.runs.repair`).

Decisions where the spec is silent, written down here:
- Every action that puts a run back in `queued` clears `pause_reason` (the original's recover kept
  a stale `stale_no_provider_activity` marker; reference notes §10.12).
- Recover of a failed run resets every failed node, not only the one `last_failure` names, so a
  run with two failed branches can make progress.
- Cancel of a terminal run (`completed`, `failed`, `cancelled`) changes nothing and so writes no
  audit event; authorisation is still checked (and a denial audited).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from automations import fairness, scheduling
from automations.flow import descendants
from automations.lifecycle import lifecycle_event
from automations.models import (
    Automation,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from automations.run_nodes import nodes_replan
from automations.run_spec import RunSpec
from automations.runs import state
from automations.runs.sweeps import STALE_REASON
from automations.runs.transitions import OPERATOR_ACTIONS, Cause, OperatorAction
from automations.services import automation_snapshot, lock_live
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, InvalidRequest, NotFound
from governance.policy import Action, authorize

# Detail prefixes naming the node a run-level completion assertion failed on (reference §6).
FAILURE_DETAIL_PREFIXES = (
    "automation run missing successful external action receipt for outbound node `",
    "automation run missing successful email delivery receipt for node `",
)
DELIVERABLE_DETAIL_PREFIXES = (
    "automation run deliverable `",
    "automation run missing required deliverable `",
)
RUNTIME_CONTEXT_DETAIL = "runtime context partition missing for automation run"
FAILED_OUTPUT_STATUSES = frozenset({"failed", "verify_failed"})
FAILED_OUTPUT_KINDS = frozenset({"verification_failed", "run_failed"})


@dataclass
class RunChange:
    """The locked state an action changes, and what it reports back.

    Actions mutate `run` and the rows in `nodes` (marking node ids in `touched`), and fill
    `metadata` (of the last lifecycle event), `audit` (extra audit payload) and `extra` (extra
    keys of the API response).
    """

    run: Run
    nodes: dict[str, RunNode]
    spec: RunSpec
    action: OperatorAction
    reason: str
    given_reason: str | None
    now: datetime
    source_status: str
    automation: Automation | None = None
    lifecycle: tuple[str, ...] = ()
    lifecycle_stop_kind: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    reset: set[str] = field(default_factory=set)  # the nodes this action sent back to pending
    snapshot_changed: bool = False

    @property
    def flow_nodes(self) -> list[dict[str, Any]]:
        return list(self.spec.nodes.values())


@dataclass(frozen=True)
class RunControlResult:
    """What an action did: the run as written, response extras, and for repair the automation.

    `already_terminal` is set when a cancel found the run terminal and changed nothing.
    """

    run: Run
    already_terminal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    automation: Automation | None = None


Apply = Callable[[RunChange], None]


# --- the primitive ----------------------------------------------------------------------------


def run_transition(
    *,
    actor: Actor,
    run: Run,
    action: Cause,
    reason: str | None = None,
    node_id: str = "",
    apply: Apply | None = None,
) -> RunControlResult:
    """Authorise, lock, check, apply, fence, record and schedule one operator action on a run.

    `run` is the run as the caller found it (with its automation); everything is re-read under
    the locks. `apply` makes the action's own change to the locked state; it may raise a typed
    error, which rolls the whole transaction back.
    """
    operator_action = OPERATOR_ACTIONS[action]
    authorize(actor, Action.OPERATE, run.automation)
    with transaction.atomic():
        automation = lock_live(run.automation) if operator_action.locks_automation else None
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status in operator_action.noop_from:
            return RunControlResult(run=locked, already_terminal=True)
        state.check(locked.status, action, run_id=locked.run_id)
        nodes = {
            n.node_id: n
            for n in RunNode.objects.select_for_update().filter(run=locked).order_by("pk")
        }
        change = RunChange(
            run=locked,
            nodes=nodes,
            spec=RunSpec.from_snapshot(locked.automation_snapshot),
            action=operator_action,
            reason=operator_action.reason(reason, node_id=node_id),
            given_reason=reason,
            now=timezone.now(),
            source_status=locked.status,
            automation=automation,
            lifecycle=operator_action.lifecycle,
        )
        fenced, task_ids = state.fence_nodes(nodes.values())
        if fenced:
            change.touched.update(fenced)
            change.metadata["fenced_nodes"] = fenced
        approved = _approved_plans(change)
        if apply is not None:
            apply(change)
        _reopen_changed_approvals(change, approved)
        state.run_move(locked, action, now=change.now)
        _write(change)
        scheduling.revoke_after_commit(task_ids)
        if fenced:  # their slots go to the workspace's held attempts
            fairness.admit_after_commit(locked.workspace_id)
        if locked.status == RunStatus.QUEUED:
            scheduling.advance_after_commit(locked.run_id)
        audit_record(
            workspace=actor.workspace,
            event_type=operator_action.audit_event,
            actor=actor,
            payload={
                "runID": locked.run_id,
                "automationID": run.automation.automation_id,
                "reason": change.reason,
                "fromStatus": change.source_status,
                "toStatus": locked.status,
                "actor": actor.describe(),  # with the surface: admin, api, page, ...
                **change.audit,
            },
        )
    return RunControlResult(run=locked, extra=change.extra, automation=automation)


def _write(change: RunChange) -> None:
    """Save the run and the touched nodes, supersede open gates, record lifecycle events."""
    run = change.run
    state.run_save(run, snapshot=change.snapshot_changed)
    state.nodes_save(
        [change.nodes[n] for n in sorted(change.touched) if n in change.nodes], now=change.now
    )
    if run.status != RunStatus.AWAITING_APPROVAL:
        superseded = state.supersede_open_gates([run.pk], now=change.now).get(run.pk)
        if superseded:
            change.metadata["superseded_gates"] = superseded
            change.audit["supersededGates"] = superseded
    events = [
        lifecycle_event(run, name, reason=change.reason, stop_kind=change.lifecycle_stop_kind)
        for name in change.lifecycle
    ]
    events[-1].metadata = change.metadata
    LifecycleEvent.objects.bulk_create(events)


def reset_subtree(change: RunChange, node_ids: Iterable[str], *, keep_attempts: bool) -> list[str]:
    """Reset a subtree of the locked run (`state.reset_nodes`); returns `cleared_outputs`."""
    touched, cleared = state.reset_nodes(change.nodes, node_ids, keep_attempts=keep_attempts)
    change.touched.update(touched)
    change.reset.update(touched)
    return cleared


def _approved_plans(change: RunChange) -> dict[str, list[dict[str, Any]]]:
    """The downstream plan each approved gate of the run covers, before the action."""
    return {
        node_id: change.spec.downstream_plan(node_id)
        for node_id in change.spec.order
        if change.spec.is_approval(node_id)
        and change.nodes.get(node_id) is not None
        and change.nodes[node_id].state == NodeState.COMPLETED
    }


def _reopen_changed_approvals(change: RunChange, approved: dict[str, list[dict]]) -> None:
    """An approval covers the plan that runs after it. When this action resets a node
    downstream of an approved gate, or changes what a downstream node will do (a repair, or a
    re-snapshot of a changed automation), the gate goes back to pending: the engine opens it
    again as a new round before anything below it runs, so the change is approved again."""
    reopened = []
    for gate_id, plan in approved.items():
        node = change.nodes.get(gate_id)
        if node is None or node.state != NodeState.COMPLETED or gate_id not in change.spec.nodes:
            continue  # reset by the action itself, or no longer in the flow
        now_plan = change.spec.downstream_plan(gate_id)
        below = {step["node_id"] for step in now_plan}
        before = {step["node_id"]: step for step in plan}
        changed = sorted(
            {step["node_id"] for step in now_plan if before.get(step["node_id"]) != step}
            | (set(before) - below)
        )
        reset = sorted(change.reset & below)
        if not (changed or reset):
            continue
        reset_subtree(change, [gate_id], keep_attempts=False)
        reopened.append({"node_id": gate_id, "changed_nodes": changed, "reset_nodes": reset})
    if reopened:
        change.metadata["reopened_gates"] = reopened
        change.audit["reopenedGates"] = reopened


def requeue_fields(change: RunChange, *, detail: bool = True) -> None:
    """The run fields an action that puts the run back in `queued` sets besides those the move
    implies (reference §6)."""
    run = change.run
    if detail:
        run.detail = change.reason
    run.resume_reason = change.reason


def resnapshot(change: RunChange, automation: Automation) -> None:
    """Make the run execute `automation`'s current spec; reconcile its node rows with it."""
    snapshot = automation_snapshot(automation)
    change.run.automation_snapshot = snapshot
    change.spec = RunSpec.from_snapshot(snapshot)
    change.snapshot_changed = True
    added, removed = nodes_replan(change.run, change.nodes, change.spec)
    if added or removed:
        change.metadata["nodes_added"] = added
        change.metadata["nodes_removed"] = removed


def blocked_node_ids(nodes: Iterable[RunNode]) -> set[str]:
    """Nodes with a blocked outcome: state `blocked`, or an output whose status is `blocked`
    (the original's `automation_v2_blocked_node_ids`, without structural waiting)."""
    return {
        n.node_id for n in nodes if n.state == NodeState.BLOCKED or _output_status(n) == "blocked"
    }


def _output_status(node: RunNode) -> str:
    output = node.output if isinstance(node.output, dict) else {}
    status = output.get("status")
    if status is None and isinstance(output.get("content"), dict):
        status = output["content"].get("status")
    return str(status or "").lower()


def live_automation(run: Run) -> Automation | None:
    """The run's automation as committed now, or None when it was deleted."""
    return (
        Automation.objects.select_related("created_by")
        .filter(pk=run.automation_id, deleted_at__isnull=True)
        .first()
    )


def require_task_node(spec: RunSpec, node_id: str) -> None:
    if node_id not in spec.nodes:
        raise NotFound("Node not found", code="AUTOMATION_V2_TASK_NODE_NOT_FOUND", nodeID=node_id)


def require_node_id(node_id: str, *, code: str) -> str:
    """The trimmed node id, or 400 `code` ("node_id is required") when it is blank."""
    node_id = (node_id or "").strip()
    if not node_id:
        raise InvalidRequest("node_id is required", code=code)
    return node_id


# --- the actions ------------------------------------------------------------------------------


def run_pause(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """`queued`/`running` → `paused`; in-flight attempts are fenced out and their tasks revoked.

    Running nodes go back to pending with their token cleared, so a result that arrives later is
    discarded by `engine.node_result_accept`; the attempt still counts.
    """

    def apply(change: RunChange) -> None:
        change.run.pause_reason = change.reason

    return run_transition(actor=actor, run=run, action=Cause.PAUSE, reason=reason, apply=apply).run


def run_resume(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """`paused` → `queued`: `resume_reason` set, pause and stop fields cleared; nodes untouched."""

    def apply(change: RunChange) -> None:
        requeue_fields(change, detail=False)

    return run_transition(actor=actor, run=run, action=Cause.RESUME, reason=reason, apply=apply).run


def run_cancel(*, actor: Actor, run: Run, reason: str | None = None) -> RunControlResult:
    """Any non-terminal status → `cancelled` (`stop_kind = operator_stopped`, detail and
    `stop_reason` = reason, `run_stopped`); a terminal run is returned unchanged with
    `already_terminal`."""

    def apply(change: RunChange) -> None:
        fields = state.cancelled_fields(reason=change.reason, stop_kind=StopKind.OPERATOR_STOPPED)
        for name, value in fields.items():
            setattr(change.run, name, value)
        change.lifecycle_stop_kind = StopKind.OPERATOR_STOPPED

    return run_transition(actor=actor, run=run, action=Cause.CANCEL, reason=reason, apply=apply)


def run_recover(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """Put a failed, paused, blocked (or completed-with-blocked-nodes) run back in `queued`.

    Reference notes §6.1: a failed run resets the descendants of its failed node(s) and blocked
    nodes; a blocked run (or a completed one with blocked evidence) the descendants of its
    blocked nodes; a paused run nothing, except that a stale-reaped pause
    (`stale_no_provider_activity`) clears the pending nodes' outputs and attempts.
    """
    return run_transition(
        actor=actor, run=run, action=Cause.RECOVER, reason=reason, apply=_apply_recover
    ).run


def _apply_recover(change: RunChange) -> None:
    run, status = change.run, change.source_status
    blocked = blocked_node_ids(change.nodes.values())
    if status == RunStatus.COMPLETED and not blocked:
        transition = change.action.transition
        raise Conflict(transition.message, code=transition.code, runID=run.run_id)
    if status == RunStatus.FAILED:
        roots = blocked | _failed_node_ids(run, change.nodes)
        if not roots and run.detail.startswith(DELIVERABLE_DETAIL_PREFIXES):
            roots = _leaf_nodes(change.spec)
        if not roots:
            raise Conflict(
                "Run has no recoverable failed node",
                code="AUTOMATION_V2_RUN_FAILURE_CONTEXT_MISSING",
                runID=run.run_id,
            )
        reset = descendants(change.flow_nodes, roots)
    elif status in (RunStatus.BLOCKED, RunStatus.COMPLETED):
        if not blocked:
            raise Conflict(
                "Run has no recoverable blocked node",
                code="AUTOMATION_V2_RUN_BLOCKED_CONTEXT_MISSING",
                runID=run.run_id,
            )
        reset = descendants(change.flow_nodes, blocked)
    else:  # paused
        reset = set()
    reset &= set(change.spec.order)
    if status == RunStatus.PAUSED and not (change.given_reason or "").strip():
        change.reason = "recovered from paused state by operator"
    if status == RunStatus.PAUSED and run.pause_reason == STALE_REASON and not reset:
        pending = [n.node_id for n in change.nodes.values() if n.state == NodeState.PENDING]
        change.metadata["cleared_outputs"] = reset_subtree(change, pending, keep_attempts=False)
    cleared = reset_subtree(change, reset, keep_attempts=False)
    if reset or run.detail == RUNTIME_CONTEXT_DETAIL:
        run.last_failure = None
    requeue_fields(change)
    if not reset and status == RunStatus.PAUSED:
        change.lifecycle = ("run_recovered_from_pause",)
    change.metadata.setdefault("cleared_outputs", cleared)
    change.metadata["reset_nodes"] = sorted(reset)
    change.audit["resetNodes"] = sorted(reset)


def _failed_node_ids(run: Run, nodes: dict[str, RunNode]) -> set[str]:
    """The failed node(s) recover restarts from (the original's
    `automation_v2_recoverable_failure_node_id`, plus every node in state `failed`)."""
    found = {n.node_id for n in nodes.values() if n.state == NodeState.FAILED}
    named = (run.last_failure or {}).get("node_id") if isinstance(run.last_failure, dict) else None
    if isinstance(named, str) and named:
        return found | {named}
    for node in sorted(nodes.values(), key=lambda n: n.node_id):
        output = node.output if isinstance(node.output, dict) else {}
        if (
            _output_status(node) in FAILED_OUTPUT_STATUSES
            or output.get("failure_kind") in FAILED_OUTPUT_KINDS
        ):
            return found | {node.node_id}
    for prefix in FAILURE_DETAIL_PREFIXES:
        if run.detail.startswith(prefix):
            return found | {run.detail[len(prefix) :].split("`", 1)[0]}
    if run.detail == RUNTIME_CONTEXT_DETAIL:
        return found | {"runtime_context"}
    return found


def _leaf_nodes(spec: RunSpec) -> set[str]:
    """Nodes nothing depends on: where a run-level deliverable is produced."""
    upstream = {d for node_id in spec.order for d in spec.depends_on(node_id)}
    return {node_id for node_id in spec.order if node_id not in upstream}
