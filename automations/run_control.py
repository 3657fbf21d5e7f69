"""Operator actions on runs: pause, resume, cancel, recover, repair, task retry/requeue/continue.

Every action goes through one primitive, `run_transition`, driven by the table in
`automations.transitions`:

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
5. apply the action's change, move the run to the table's target status, supersede any open gate
   when the run leaves `awaiting_approval`, record the lifecycle events and the audit event
   `automation.run.<verb>` — all committed together;
6. after commit, revoke the fenced Celery tasks and, when the run is `queued` again, schedule its
   execution.

Node resets (recover, repair, task retry/requeue/continue) follow the reference notes §6: the
reset set is the node's descendant subtree (`flow.graph.descendants`); reset nodes go back to
`pending` with their output cleared and, except for retry/requeue, their attempts too.
`cleared_outputs` names the reset nodes that held an output (Flowgate keeps node outputs in the
database, not in files, so these are node ids rather than the original's file paths).

Decisions where the spec is silent, written down here:
- Every action that puts a run back in `queued` clears `pause_reason` (the original's recover kept
  a stale `stale_no_provider_activity` marker; reference notes §10.12).
- Recover of a failed run resets every failed node, not only the one `last_failure` names, so a
  run with two failed branches can make progress.
- Cancel of a terminal run (`completed`, `failed`, `cancelled`) changes nothing and so writes no
  audit event; authorisation is still checked (and a denial audited).
- Repair edits the live automation through `services.automation_apply_change` (validated, new
  version) and records one combined audit event, `automation.run.repaired`, whose payload carries
  `automationVersion` and `automationChanged`; a repair naming only `node_id` changes no
  automation field (no new version) and just resets the subtree. Repair and task retry/requeue
  re-snapshot the run from the live automation (reference §6.2, §6.3): node rows of nodes added to
  the flow since the run started are created pending, rows of removed nodes are dropped.
- Continue accepts only a node with a blocked outcome (state `blocked`, or an output whose status
  is `blocked`); the original also counted nodes merely waiting behind an unfinished dependency.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import hooks
from approvals.models import Gate, GateStatus
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
from automations.services import _lock_live, automation_apply_change, automation_snapshot
from automations.spec import RunSpec
from automations.sweeps import STALE_REASON
from automations.transitions import PAUSABLE, TRANSITIONS, RunAction, Transition
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, InvalidRequest, NotFound
from governance.policy import Action, authorize

__all__ = [
    "PAUSABLE",
    "RunControlResult",
    "run_cancel",
    "run_pause",
    "run_recover",
    "run_repair",
    "run_reset_preview",
    "run_resume",
    "run_task_continue",
    "run_task_requeue",
    "run_task_retry",
    "run_transition",
]

# Run fields an action may write (the snapshot only when an action replaces it).
RUN_CONTROL_FIELDS = [
    "status",
    "detail",
    "pause_reason",
    "resume_reason",
    "stop_kind",
    "stop_reason",
    "last_failure",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "version",
    "updated_at",
]
NODE_CONTROL_FIELDS = [
    "state",
    "attempts",
    "output",
    "attempt_token",
    "task_id",
    "not_before",
    "started_at",
    "finished_at",
    "updated_at",
]
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
    transition: Transition
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
    action: RunAction,
    reason: str | None = None,
    node_id: str = "",
    apply: Apply | None = None,
) -> RunControlResult:
    """Authorise, lock, check, apply, fence, record and schedule one operator action on a run.

    `run` is the run as the caller found it (with its automation); everything is re-read under
    the locks. `apply` makes the action's own change to the locked state; it may raise a typed
    error, which rolls the whole transaction back.
    """
    from automations import tasks

    transition = TRANSITIONS[action]
    authorize(actor, Action.OPERATE, run.automation)
    with transaction.atomic():
        automation = _lock_live(run.automation) if transition.locks_automation else None
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status in transition.noop_from:
            return RunControlResult(run=locked, already_terminal=True)
        if locked.status not in transition.allowed:
            raise Conflict(transition.message, code=transition.code, runID=locked.run_id)
        nodes = {
            n.node_id: n
            for n in RunNode.objects.select_for_update().filter(run=locked).order_by("pk")
        }
        change = RunChange(
            run=locked,
            nodes=nodes,
            spec=RunSpec.from_snapshot(locked.automation_snapshot),
            transition=transition,
            reason=transition.reason(reason, node_id=node_id),
            given_reason=reason,
            now=timezone.now(),
            source_status=locked.status,
            automation=automation,
            lifecycle=transition.lifecycle,
        )
        task_ids = _fence(change)
        if apply is not None:
            apply(change)
        _move(change)
        _write(change)
        # Robust: the change is committed; a broker hiccup while revoking must not turn it
        # into a 500 or skip scheduling (fenced tasks are discarded when they report anyway).
        transaction.on_commit(lambda: tasks.revoke(task_ids), robust=True)
        if locked.status == RunStatus.QUEUED:
            transaction.on_commit(lambda: tasks.schedule_advance(locked.run_id))
        audit_record(
            workspace=actor.workspace,
            event_type=transition.audit_event,
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


def _fence(change: RunChange) -> list[str]:
    """Send running nodes back to pending without their attempt token; return their task ids.

    With the token gone, a result reported later is discarded by `engine.node_result_accept`.
    """
    fenced = [n for n in change.nodes.values() if n.state == NodeState.RUNNING]
    task_ids = [n.task_id for n in fenced if n.task_id]
    for node in fenced:
        node.state = NodeState.PENDING
        node.attempt_token = None
        node.task_id = ""
        change.touched.add(node.node_id)
    if fenced:
        change.metadata["fenced_nodes"] = [n.node_id for n in fenced]
    return task_ids


def _move(change: RunChange) -> None:
    """Apply the table's target status and the fields every transition resets."""
    run = change.run
    run.status = change.transition.target
    run.lease_owner = ""
    run.lease_expires_at = None
    if run.status == RunStatus.QUEUED:
        run.finished_at = None
        run.pause_reason = ""
    elif run.status == RunStatus.CANCELLED:
        run.finished_at = change.now
    run.version += 1


def _write(change: RunChange) -> None:
    """Save the run and the touched nodes, supersede open gates, record lifecycle events."""
    run = change.run
    fields = [*RUN_CONTROL_FIELDS, *(["automation_snapshot"] if change.snapshot_changed else [])]
    run.save(update_fields=fields)
    touched = [change.nodes[n] for n in sorted(change.touched) if n in change.nodes]
    for node in touched:
        node.updated_at = change.now  # bulk_update does not apply `auto_now`
    if touched:
        RunNode.objects.bulk_update(touched, NODE_CONTROL_FIELDS)
    if run.status != RunStatus.AWAITING_APPROVAL:
        superseded = _supersede_open_gates(run, change.now)
        if superseded:
            change.metadata["superseded_gates"] = superseded
            change.audit["supersededGates"] = superseded
    events = [
        lifecycle_event(run, name, reason=change.reason, stop_kind=change.lifecycle_stop_kind)
        for name in change.lifecycle
    ]
    events[-1].metadata = change.metadata
    LifecycleEvent.objects.bulk_create(events)


def _supersede_open_gates(run: Run, now: datetime) -> list[str]:
    """Close the run's open gate (a run that leaves `awaiting_approval` no longer waits on it).

    The gate row is locked after the run row (the fixed order: run, gate, audit head), so a
    concurrent decision either committed before this action (and the run was no longer awaiting)
    or finds the gate superseded.
    """
    ids = list(
        Gate.objects.select_for_update()
        .filter(run=run, status=GateStatus.OPEN)
        .order_by("pk")
        .values_list("id", flat=True)
    )
    if ids:
        Gate.objects.filter(pk__in=ids).update(status=GateStatus.SUPERSEDED, closed_at=now)
        for gate_id in ids:
            # Its chat cards lose their buttons and say the run moved on.
            transaction.on_commit(partial(hooks.gate_decided, gate_id), robust=True)
    return ids


# --- node resets ------------------------------------------------------------------------------


def _reset(change: RunChange, node_ids: Iterable[str], *, keep_attempts: bool) -> list[str]:
    """Send nodes back to pending with their output cleared (and attempts, unless kept).

    Returns `cleared_outputs`: the sorted ids of the reset nodes that held an output.
    """
    cleared = []
    for node_id in sorted(node_ids):
        node = change.nodes.get(node_id)
        if node is None:
            continue
        if node.output is not None:
            cleared.append(node_id)
        node.state = NodeState.PENDING
        node.output = None
        if not keep_attempts:
            node.attempts = 0
        node.attempt_token = None
        node.task_id = ""
        node.not_before = None
        node.started_at = None
        node.finished_at = None
        change.touched.add(node_id)
    return cleared


def _requeue_fields(change: RunChange, *, detail: bool = True) -> None:
    """The run fields every action that puts the run back in `queued` sets (reference §6)."""
    run = change.run
    if detail:
        run.detail = change.reason
    run.resume_reason = change.reason
    run.stop_kind = ""
    run.stop_reason = ""


def _resnapshot(change: RunChange, automation: Automation) -> None:
    """Make the run execute `automation`'s current spec; reconcile its node rows with it."""
    snapshot = automation_snapshot(automation)
    change.run.automation_snapshot = snapshot
    change.spec = RunSpec.from_snapshot(snapshot)
    change.snapshot_changed = True
    wanted = set(change.spec.order)
    gone = [node_id for node_id in change.nodes if node_id not in wanted]
    if gone:
        RunNode.objects.filter(run=change.run, node_id__in=gone).delete()
        for node_id in gone:
            del change.nodes[node_id]
    missing = [node_id for node_id in change.spec.order if node_id not in change.nodes]
    if missing:
        created = RunNode.objects.bulk_create(
            [RunNode(run=change.run, node_id=node_id) for node_id in missing]
        )
        change.nodes.update({node.node_id: node for node in created})
    if gone or missing:
        change.metadata["nodes_added"] = missing
        change.metadata["nodes_removed"] = sorted(gone)


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


def _live_automation(run: Run) -> Automation | None:
    """The run's automation as committed now, or None when it was deleted."""
    return (
        Automation.objects.select_related("created_by")
        .filter(pk=run.automation_id, deleted_at__isnull=True)
        .first()
    )


def _require_task_node(spec: RunSpec, node_id: str) -> None:
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

    return run_transition(
        actor=actor, run=run, action=RunAction.PAUSE, reason=reason, apply=apply
    ).run


def run_resume(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """`paused` → `queued`: `resume_reason` set, pause and stop fields cleared; nodes untouched."""

    def apply(change: RunChange) -> None:
        _requeue_fields(change, detail=False)

    return run_transition(
        actor=actor, run=run, action=RunAction.RESUME, reason=reason, apply=apply
    ).run


def run_cancel(*, actor: Actor, run: Run, reason: str | None = None) -> RunControlResult:
    """Any non-terminal status → `cancelled` (`stop_kind = operator_stopped`, detail and
    `stop_reason` = reason, `run_stopped`); a terminal run is returned unchanged with
    `already_terminal`."""

    def apply(change: RunChange) -> None:
        change.run.detail = change.reason
        change.run.stop_kind = StopKind.OPERATOR_STOPPED
        change.run.stop_reason = change.reason
        change.lifecycle_stop_kind = StopKind.OPERATOR_STOPPED

    return run_transition(actor=actor, run=run, action=RunAction.CANCEL, reason=reason, apply=apply)


def run_recover(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """Put a failed, paused, blocked (or completed-with-blocked-nodes) run back in `queued`.

    Reference notes §6.1: a failed run resets the descendants of its failed node(s) and blocked
    nodes; a blocked run (or a completed one with blocked evidence) the descendants of its
    blocked nodes; a paused run nothing, except that a stale-reaped pause
    (`stale_no_provider_activity`) clears the pending nodes' outputs and attempts.
    """
    return run_transition(
        actor=actor, run=run, action=RunAction.RECOVER, reason=reason, apply=_apply_recover
    ).run


def _apply_recover(change: RunChange) -> None:
    run, status = change.run, change.source_status
    blocked = blocked_node_ids(change.nodes.values())
    if status == RunStatus.COMPLETED and not blocked:
        raise Conflict(change.transition.message, code=change.transition.code, runID=run.run_id)
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
        change.metadata["cleared_outputs"] = _reset(change, pending, keep_attempts=False)
    cleared = _reset(change, reset, keep_attempts=False)
    if reset or run.detail == RUNTIME_CONTEXT_DETAIL:
        run.last_failure = None
    _requeue_fields(change)
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


def run_repair(
    *,
    actor: Actor,
    run: Run,
    node_id: str,
    prompt: str | None = None,
    template_id: str | None = None,
    model_policy: dict[str, Any] | None = None,
    reason: str | None = None,
) -> RunControlResult:
    """Edit a node's prompt and/or its agent's template/model on the automation, reset the
    node's descendant subtree (outputs and attempts) and re-queue the run on the repaired spec.

    Reference notes §6.2. 400 `AUTOMATION_V2_REPAIR_NODE_REQUIRED` before anything is read;
    404 `AUTOMATION_V2_REPAIR_NODE_NOT_FOUND` / `AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND` after the
    status check. The automation edit goes through `automation_apply_change` (validated, new
    version) in the same transaction as the run change.
    """
    node_id = require_node_id(node_id, code="AUTOMATION_V2_REPAIR_NODE_REQUIRED")
    prompt = (prompt or "").strip() or None
    template_id = (template_id or "").strip() or None

    def apply(change: RunChange) -> None:
        automation = change.automation
        flow = copy.deepcopy(automation.flow)
        agents = copy.deepcopy(automation.agents)
        node = next((n for n in flow.get("nodes", []) if n.get("node_id") == node_id), None)
        if node is None:
            raise NotFound(
                "Node not found", code="AUTOMATION_V2_REPAIR_NODE_NOT_FOUND", nodeID=node_id
            )
        previous_prompt = _builder_prompt(node)
        agent_id = node.get("agent_id")
        agent = next((a for a in agents if a.get("agent_id") == agent_id), None)
        previous_agent = copy.deepcopy(agent) if agent is not None else None
        data: dict[str, Any] = {}
        if prompt is not None:
            _set_builder_prompt(node, prompt)
            data["flow"] = flow
        if template_id is not None or model_policy is not None:
            if agent is None:
                raise NotFound(
                    "Node agent not found",
                    code="AUTOMATION_V2_REPAIR_AGENT_NOT_FOUND",
                    agentID=agent_id,
                )
            if template_id is not None:
                agent["template_id"] = template_id
            if model_policy is not None:
                agent["model_policy"] = model_policy
            data["agents"] = agents
        changed = automation_apply_change(locked=automation, data=data, changed_by=actor.user)
        _resnapshot(change, automation)
        reset = descendants(change.flow_nodes, [node_id]) & set(change.spec.order)
        cleared = _reset(change, reset, keep_attempts=False)
        change.run.last_failure = None
        _requeue_fields(change)
        updated_agent = change.spec.agents.get(agent_id) if agent_id else None
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": sorted(reset),
                "prompt_updated": prompt is not None,
                "template_updated": template_id is not None,
                "model_policy_updated": model_policy is not None,
                "reset_only": not data,
                "cleared_outputs": cleared,
                "previous_prompt": previous_prompt,
                "new_prompt": prompt,
                "previous_template_id": (previous_agent or {}).get("template_id"),
                "new_template_id": (updated_agent or {}).get("template_id"),
                "previous_model_policy": (previous_agent or {}).get("model_policy"),
                "new_model_policy": (updated_agent or {}).get("model_policy"),
                "automation_version": automation.version,
            }
        )
        change.audit.update(
            {
                "nodeID": node_id,
                "resetNodes": sorted(reset),
                "automationVersion": automation.version,
                "automationChanged": changed,
            }
        )

    return run_transition(
        actor=actor, run=run, action=RunAction.REPAIR, reason=reason, node_id=node_id, apply=apply
    )


def _builder_prompt(node: dict[str, Any]) -> str | None:
    metadata = node.get("metadata")
    builder = metadata.get("builder") if isinstance(metadata, dict) else None
    prompt = builder.get("prompt") if isinstance(builder, dict) else None
    return prompt if isinstance(prompt, str) else None


def _set_builder_prompt(node: dict[str, Any], prompt: str) -> None:
    """Set `metadata.builder.prompt`, creating the objects; 400 when one is not an object."""
    if node.get("metadata") is None:
        node["metadata"] = {}
    metadata = node["metadata"]
    if isinstance(metadata, dict) and metadata.get("builder") is None:
        metadata["builder"] = {}
    if not isinstance(metadata, dict) or not isinstance(metadata["builder"], dict):
        raise InvalidRequest(
            "Node metadata is not repairable", code="AUTOMATION_V2_REPAIR_METADATA_INVALID"
        )
    metadata["builder"]["prompt"] = prompt


def run_task_retry(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """Reset a node's descendant subtree (outputs cleared, attempts kept) and re-queue the run
    on the automation's current spec (reference §6.3); lifecycle `run_task_retried`."""
    return _task_reset(
        actor=actor, run=run, node_id=node_id, reason=reason, action=RunAction.TASK_RETRY
    )


def run_task_requeue(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """As `run_task_retry`, recorded as `run_task_requeued`."""
    return _task_reset(
        actor=actor, run=run, node_id=node_id, reason=reason, action=RunAction.TASK_REQUEUE
    )


def _task_reset(
    *, actor: Actor, run: Run, node_id: str, reason: str | None, action: RunAction
) -> RunControlResult:
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")

    def apply(change: RunChange) -> None:
        live = _live_automation(change.run)
        if live is not None:
            _require_task_node(RunSpec.from_snapshot({"flow": live.flow}), node_id)
            _resnapshot(change, live)
        else:
            _require_task_node(change.spec, node_id)
        reset = sorted(descendants(change.flow_nodes, [node_id]) & set(change.spec.order))
        cleared = _reset(change, reset, keep_attempts=True)
        change.run.last_failure = None
        _requeue_fields(change)
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": reset,
                "cleared_outputs": cleared,
                "automation_version": change.run.automation_snapshot.get("version"),
            }
        )
        change.audit.update({"nodeID": node_id, "resetNodes": reset})
        change.extra.update({"node_id": node_id, "reset_nodes": reset, "cleared_outputs": cleared})

    return run_transition(
        actor=actor, run=run, action=action, reason=reason, node_id=node_id, apply=apply
    )


def run_task_continue(
    *, actor: Actor, run: Run, node_id: str, reason: str | None = None
) -> RunControlResult:
    """Minimal reset of one blocked node (output and attempts cleared) and re-queue the run
    (reference §6.4). 409 `AUTOMATION_V2_TASK_NOT_BLOCKED` when the node has no blocked outcome
    (checked before the node's existence, as the original does)."""
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")

    def apply(change: RunChange) -> None:
        run = change.run
        if node_id not in blocked_node_ids(change.nodes.values()):
            raise Conflict(
                "Task is not blocked",
                code="AUTOMATION_V2_TASK_NOT_BLOCKED",
                runID=run.run_id,
                nodeID=node_id,
            )
        _require_task_node(change.spec, node_id)
        cleared = _reset(change, [node_id], keep_attempts=False)
        if isinstance(run.last_failure, dict) and run.last_failure.get("node_id") == node_id:
            run.last_failure = None
        _requeue_fields(change)
        change.metadata.update(
            {
                "node_id": node_id,
                "reset_nodes": [node_id],
                "cleared_outputs": cleared,
                "mode": "minimal_reset",
            }
        )
        change.audit.update({"nodeID": node_id, "resetNodes": [node_id]})
        change.extra.update({"node_id": node_id, "reset_nodes": [node_id]})

    return run_transition(
        actor=actor,
        run=run,
        action=RunAction.TASK_CONTINUE,
        reason=reason,
        node_id=node_id,
        apply=apply,
    )


def run_reset_preview(*, run: Run, node_id: str) -> dict[str, Any]:
    """What a task retry/requeue of `node_id` would reset, without changing anything.

    A read (no lock, no write, no audit): the reset set on the spec a retry would use (the live
    automation, else the run's snapshot) and the reset nodes whose outputs would be cleared.
    `run` must come with its nodes prefetched (`selectors.run_get`).
    """
    node_id = require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")
    live = _live_automation(run)
    spec = RunSpec.from_snapshot(
        {"flow": live.flow} if live is not None else run.automation_snapshot
    )
    _require_task_node(spec, node_id)
    reset = sorted(descendants(spec.nodes.values(), [node_id]) & set(spec.order))
    outputs = {n.node_id for n in run.nodes.all() if n.output is not None}
    return {
        "run_id": run.run_id,
        "node_id": node_id,
        "reset_nodes": reset,
        "cleared_outputs": [n for n in reset if n in outputs],
        "preserves_upstream_outputs": True,
    }
