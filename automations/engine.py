"""The run engine: advance a run, execute one node attempt, accept or fence its result.

Locking policy (see STYLE.md): every state change of a run happens in a transaction that first
locks the run row (`SELECT … FOR UPDATE`), then the run's node rows, then (when a gate opens or
an audit event is written) the gate and the audit chain head. Because every writer takes the
run lock first, two workers can never both advance the same run, and an operator's pause or
cancel serialises with the engine.

Fencing: a node attempt is dispatched with a fresh `attempt_token`. Its result is accepted only
if, inside the accepting transaction, the run is still `running` and the node still holds that
token. Pause, cancel, repair and reset clear or replace the token, so a late result is discarded
(and recorded as `node_result_discarded`) instead of overwriting the operator's decision.

Node code runs outside any transaction and never holds a lock: a slow model call or HTTP request
cannot block operators.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Min, Q
from django.utils import timezone
from structlog.contextvars import bound_contextvars

from automations import fairness, scheduling
from automations.handoffs import writer as handoffs
from automations.lifecycle import lifecycle_event, lifecycle_record
from automations.models import (
    AutomationStatus,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from automations.nodes.base import NodeContext, NodeFailure
from automations.nodes.registry import gate_kind, node_kind
from automations.run_nodes import readiness_refresh, readiness_release
from automations.run_spec import NodeSpec, RunSpec
from automations.runs import state
from automations.runs.transitions import Cause

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=30)
DONE = frozenset({NodeState.COMPLETED, NodeState.SKIPPED})
APPROVAL = "approval"  # `RunNode.kind` of every gate node (`NodeSpec.kind`)


def _claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- planning ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What the engine does next with a running run (computed under the run lock)."""

    start: list[RunNode] = field(default_factory=list)
    gate: RunNode | None = None
    wake_at: datetime | None = None
    busy: bool = False  # nodes running or waiting: not terminal, nothing else to do
    terminal: tuple[str, str, dict | None] | None = None  # (status, detail, last_failure)


def plan_run(run: Run, now: datetime) -> Plan:
    """Decide which nodes start, whether a gate opens, or how the run ends.

    Runnable = pending, attempts left, every dependency completed (`deps_done`). An approval
    node opens its gate only when nothing else is runnable, waiting on a retry, or running.
    Read set-based from the run's node rows by index (running nodes; the first ready nodes in
    flow order, as many as there are free slots), so the cost does not grow with the flow; the
    rows of every node are read only when the run ends (`_terminal`).
    """
    rows = RunNode.objects.filter(run=run)
    ready = rows.filter(state=NodeState.PENDING, deps_done=True)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    # One read: the running nodes first, then the due ready work in flow order, up to
    # `max_parallel` rows; what is not running fills the free slots.
    active = list(
        rows.filter(
            Q(state=NodeState.RUNNING)
            | (Q(state=NodeState.PENDING, deps_done=True) & ~Q(kind=APPROVAL) & due)
        )
        # "running" sorts after "pending": descending puts the running nodes first.
        .order_by("-state", "position")[: run.max_parallel]
    )
    running = sum(1 for n in active if n.state == NodeState.RUNNING)
    plan = Plan(start=[n for n in active if n.state != NodeState.RUNNING])
    if plan.start or running:
        plan.busy = True
        return plan
    work = ready.exclude(kind=APPROVAL)
    plan.wake_at = work.aggregate(at=Min("not_before"))["at"]
    if plan.wake_at:
        plan.busy = True
        return plan
    plan.gate = ready.filter(kind=APPROVAL).order_by("position").first()
    if plan.gate is None:
        plan.terminal = _terminal(rows)
    return plan


def _terminal(rows):
    """SPEC §3: any failed node → failed; else any blocked → blocked; else all done → completed;
    anything else could never progress → failed with a clear detail (never stuck)."""
    in_order = rows.order_by("position")
    failed = list(in_order.filter(state=NodeState.FAILED).only("node_id", "output"))
    if failed:
        first = failed[0].output or {}
        last_failure = {
            "node_id": failed[0].node_id,
            "reason": first.get("reason", "node failed"),
            "failed_at": first.get("failed_at"),
            "failure_kind": first.get("failure_kind", "execution_failed"),
        }
        names = ", ".join(n.node_id for n in failed)
        detail = f"automation run failed from node outcomes: {names}"
        return RunStatus.FAILED, detail, last_failure
    blocked = list(in_order.filter(state=NodeState.BLOCKED).values_list("node_id", flat=True))
    if blocked:
        detail = f"automation run blocked by upstream node outcome: {', '.join(blocked)}"
        return RunStatus.BLOCKED, detail, None
    pending = list(in_order.exclude(state__in=DONE).values_list("node_id", flat=True))
    if not pending:
        return RunStatus.COMPLETED, "automation run completed", None
    detail = f"flow deadlock: no runnable nodes (pending: {', '.join(pending)})"
    last_failure = {
        "node_id": pending[0],
        "reason": detail,
        "failed_at": timezone.now().isoformat(),
        "failure_kind": "deadlock",
    }
    return RunStatus.FAILED, detail, last_failure


def _runs():
    """Runs as the engine reads them: without the snapshot (a node step never needs it), with
    the automation's id and status from a join."""
    return (
        Run.objects.select_related("workspace__organization")
        .defer("automation_snapshot")
        .annotate(
            automation_key=F("automation__automation_id"),
            automation_status=F("automation__status"),
        )
    )


# --- advancing a run --------------------------------------------------------------------------


def run_advance(run_id: str) -> Run | None:
    """Claim a queued run and move it forward: start nodes, open a gate, or finish it.

    Idempotent and safe to call concurrently or redundantly: everything is decided under the
    run lock from the stored state.
    """
    return _advance(run_id)[0]


def run_advance_and_execute(run_id: str) -> None:
    """`run_advance` in a worker (the advance task): when it starts a single node without a
    time limit, this worker executes it, and the run's next nodes, itself (`node_execute`)."""
    _, attempt = _advance(run_id, inline=True)
    if attempt is not None:
        _execute(attempt, inline=True)


def _advance(run_id: str, *, inline: bool = False) -> tuple[Run | None, Attempt | None]:
    now = timezone.now()
    with transaction.atomic():
        run = _runs().select_for_update(of=("self",)).filter(run_id=run_id).first()
        if run is None:
            return None, None
        events = []
        if run.status == RunStatus.QUEUED and run.automation_status != AutomationStatus.ACTIVE:
            _hold_for_automation_pause(run, now)
            return run, None
        if run.status == RunStatus.QUEUED:
            state.run_move(run, Cause.CLAIM, now=now)
            run.started_at = run.started_at or now
            run.lease_owner = _claimant()
            run.lease_expires_at = now + LEASE
            run.lease_epoch += 1
            events.append(
                lifecycle_event(run, "run_execution_claimed", lease_owner=run.lease_owner)
            )
        if run.status != RunStatus.RUNNING:
            return run, None
        # An advance message (the claim, a retry's wake-up, a sweep's re-send) recomputes the
        # readiness of the whole run, set-based: node states changed while it was not running
        # (resets, approvals) count from here. Node completions keep it (`readiness_release`).
        readiness_refresh(run)
        attempt = _advance_locked(run, now, events, inline=inline)
        state.run_save(run)
        LifecycleEvent.objects.bulk_create(events)
    return run, attempt


def _hold_for_automation_pause(run: Run, now) -> None:
    """A queued run of a paused automation is not claimed: it is paused exactly as the
    automation pause would have paused it (so `resume` with `resume_runs` brings it back).

    Runs get queued while their automation is paused by an approval, a run resume or a
    recover; without this they would execute although the automation is paused (SPEC §5).
    """
    reason = "automation is paused"
    state.run_move(run, Cause.HOLD_FOR_AUTOMATION_PAUSE, now=now)
    run.pause_reason = reason
    run.stop_kind = StopKind.AUTOMATION_PAUSED
    run.stop_reason = reason
    state.run_save(run)
    lifecycle_record(
        run,
        "run_paused",
        reason=reason,
        stop_kind=StopKind.AUTOMATION_PAUSED,
        automation_pause=True,
        run_version=run.version,
        fenced_nodes=[],
    )


def _advance_locked(
    run: Run, now, events, *, inline: bool = False, continuing: bool = False
) -> Attempt | None:
    """Apply the plan to a running run whose row this transaction has locked.

    Node dispatches and wake-ups are scheduled for after commit. With
    `inline`, a single node to start without a time limit is not dispatched: it is claimed
    here and returned, for the calling worker to execute next (`node_execute`).
    """
    plan = plan_run(run, now)
    run.heartbeat_at = plan.wake_at or now
    if plan.start:
        alone = plan.start[0] if len(plan.start) == 1 else None
        inline_ok = inline and alone is not None and NodeSpec(alone.spec).timeout_s is None
        # Executing inline takes one of the workspace's slots (automations.fairness).
        claimed = (
            alone
            if inline_ok and fairness.inline_slot_claim(run.workspace_id, continuing=continuing)
            else None
        )
        _start_nodes(run, plan.start, now, events, claimed=claimed)
        if claimed:
            return _attempt(run, claimed, claimed.attempt_token)
        fairness.admit_after_commit(run.workspace_id)
    elif plan.wake_at:
        delay = max(0.0, (plan.wake_at - now).total_seconds())
        scheduling.advance_after_commit(run.run_id, countdown=delay)
    elif plan.gate:
        _park_on_gate(run, plan.gate, now, events)
    elif plan.terminal:
        _finish(run, *plan.terminal, now=now, events=events)
    return None


def _upstream_outputs(run: Run, node: RunNode) -> dict[str, Any]:
    """The outputs of `node`'s direct dependencies, in `depends_on` order (one query)."""
    deps = NodeSpec(node.spec).depends_on
    if not deps:
        return {}
    outputs = dict(
        RunNode.objects.filter(run=run, node_id__in=deps).values_list("node_id", "output")
    )
    return {dep: outputs.get(dep) for dep in deps}


def _park_on_gate(run: Run, node: RunNode, now, events) -> None:
    """Open the gate of `node` through its registered gate kind and park the run on it.

    The one engine step that reads the whole snapshot: the gate binds the downstream plan
    (every node below it), once per opening."""
    # Keep the history in order: what led to the gate is recorded before the gate opens.
    LifecycleEvent.objects.bulk_create(events)
    events.clear()
    run.automation_snapshot = (
        Run.objects.filter(pk=run.pk).values_list("automation_snapshot", flat=True).get()
    )
    spec = RunSpec.from_snapshot(run.automation_snapshot)
    metadata = gate_kind(node.kind).open(
        run=run,
        node_id=node.node_id,
        gate=NodeSpec(node.spec).gate,
        upstream_outputs=_upstream_outputs(run, node),
        downstream_plan=spec.downstream_plan(node.node_id),
        now=now,
    )
    state.run_move(run, Cause.GATE_OPEN, now=now)
    run.detail = f"awaiting approval for gate `{node.node_id}`"
    events.append(
        lifecycle_event(
            run, "approval_gate_opened", reason=run.detail, node_id=node.node_id, **metadata
        )
    )


NODE_START_FIELDS = [
    "state",
    "attempts",
    "attempt_token",
    "task_id",
    "not_before",
    "started_at",
    "finished_at",
    "admitted_at",
    "time_limit_s",
    "updated_at",
]


def _start_nodes(run, nodes: list[RunNode], now, events, *, claimed=None) -> None:
    """Mark nodes running with a fresh attempt token, held until `automations.fairness` admits
    them into a slot of the workspace (and publishes them).

    The `claimed` node is admitted and claimed for the calling worker at once (`started_at`
    set, as `node_execute`'s compare-and-set does for a dispatched attempt). One UPDATE however
    many start (a plain one for a single node, `bulk_update` for several)."""
    for node in nodes:
        node.state = NodeState.RUNNING
        node.attempts += 1
        node.attempt_token = uuid.uuid4()
        node.task_id = str(uuid.uuid4())
        node.not_before = None
        node.started_at = now if node is claimed else None
        node.admitted_at = now if node is claimed else None
        node.time_limit_s = NodeSpec(node.spec).timeout_s
        node.finished_at = None
        node.updated_at = now  # bulk_update does not apply `auto_now`
        events.append(
            lifecycle_event(run, "node_started", node_id=node.node_id, attempt=node.attempts)
        )
    if len(nodes) == 1:
        nodes[0].save(update_fields=NODE_START_FIELDS)
    else:
        RunNode.objects.bulk_update(nodes, NODE_START_FIELDS)


FINISH = {
    RunStatus.COMPLETED: Cause.COMPLETE,
    RunStatus.FAILED: Cause.FAIL,
    RunStatus.BLOCKED: Cause.BLOCK,
}


def _finish(run, status, detail, last_failure, *, now, events) -> None:
    state.run_move(run, FINISH[status], now=now)
    run.detail = detail
    run.last_failure = last_failure
    events.append(lifecycle_event(run, f"run_{status}", reason=detail))


# --- executing one node attempt --------------------------------------------------------------


@dataclass
class Attempt:
    """A claimed node attempt and everything its code needs (no further reads)."""

    run_pk: int
    token: str
    kind: str
    ctx: NodeContext


# A worker keeps executing a run's next node itself (no task message, no claim or read round
# trips) only while its task is younger than this: a long chain still gives other runs their
# turn and never approaches the task time limit (`CELERY_TASK_TIME_LIMIT`).
INLINE_BUDGET_S = 5.0


def node_execute(run_id: str, node_id: str, token: str) -> bool:
    """Run one node attempt (in a worker), hand its result to the accepting transaction, and
    go on with the run's next node in the same worker when it is the only one to start.

    The attempt is claimed first (compare-and-set on `started_at`), so a redelivered or
    duplicated task message never executes the same attempt twice. Returns False when the
    attempt was not executed (already claimed, or fenced out before it began).

    Continuing inline changes no rule: the next node is started (token, attempt, lifecycle
    event) and claimed in the accepting transaction exactly as a dispatch would, so pause,
    cancel and repair fence it the same way and the stale sweep covers it if this worker dies.
    Only an attempt without a time limit, started alone, continues inline, and only while the
    task is a few seconds old; a task running under a node's `timeout_s` runs that node only.
    """
    # The token is a random UUID (indexed), so it alone names the attempt.
    claimed = RunNode.objects.filter(
        attempt_token=token, state=NodeState.RUNNING, started_at__isnull=True
    ).update(started_at=timezone.now())
    if not claimed:
        logger.info(
            "node attempt not claimed run=%s node=%s (fenced or duplicate)", run_id, node_id
        )
        return False
    # The node's own row (its spec and agent were copied onto it at planning), then the run
    # without its snapshot: a node step reads the same few rows whatever the flow's size.
    node = RunNode.objects.filter(run__run_id=run_id, node_id=node_id).first()
    if node is None:  # a re-snapshot removed the node since
        return False
    run = _runs().get(pk=node.run_id)
    fairness.admit_logged(run.workspace_id)  # the claimed message leaves room in the broker
    inline = NodeSpec(node.spec).timeout_s is None
    _execute(_attempt(run, node, token), inline=inline)
    return True


def _execute(attempt: Attempt | None, *, inline: bool) -> None:
    """Execute `attempt`, accept its result, and go on with the next attempts the accepting
    transactions claimed for this worker (with `inline`, while within `INLINE_BUDGET_S`)."""
    began = time.monotonic()
    while attempt is not None:
        # Log lines of the node (its kind's too) name it; inline continuations rebind.
        with bound_contextvars(
            run_id=attempt.ctx.run_id, node_id=attempt.ctx.node_id, workspace=attempt.ctx.workspace
        ):
            logger.info("node attempt started")
            output, failure = _run_node(attempt)
            _, attempt = _accept(
                attempt.ctx.run_id,
                attempt.ctx.node_id,
                attempt.token,
                output=output,
                failure=failure,
                inline=inline and time.monotonic() - began < INLINE_BUDGET_S,
            )


def _attempt(run: Run, node: RunNode, token) -> Attempt:
    """The attempt of `node` with its context: its row, the run's (without the snapshot) and
    its direct upstream outputs (one query)."""
    ctx = NodeContext(
        run_id=run.run_id,
        automation_id=run.automation_key,
        workspace=run.workspace.path,
        node=node.spec,
        agent=node.agent,
        upstream_outputs=_upstream_outputs(run, node),
        attempt=node.attempts,
        feedback=list(node.feedback or []),
        workspace_root=run.workspace_root,
        inputs=run.inputs,
    )
    return Attempt(run_pk=run.pk, token=str(token), kind=node.kind, ctx=ctx)


def _run_node(attempt: Attempt) -> tuple[dict | None, dict | None]:
    """Execute the node's code outside any transaction: (output, None) or (None, failure)."""
    ctx = attempt.ctx
    output, failure = None, None
    with _Heartbeat(attempt.run_pk, attempt.token):
        try:
            output = node_kind(attempt.kind)(ctx)
        except NodeFailure as exc:
            failure = {"reason": exc.reason, "failure_kind": exc.failure_kind, **exc.details}
            if not exc.retryable:
                failure["retryable"] = False
        except Exception as exc:  # any crash of node code is a node failure
            logger.exception("node %s of run %s raised", ctx.node_id, ctx.run_id)
            kind = (
                "timeout" if type(exc).__name__ == "SoftTimeLimitExceeded" else "execution_failed"
            )
            failure = {"reason": f"{type(exc).__name__}: {exc}", "failure_kind": kind}
    return output, failure


def attempt_heartbeat(run_pk: int, token: str) -> bool:
    """Refresh the run's heartbeat for the attempt holding `token`; False once it is fenced.

    The update is conditional on the run still running and the node still holding the token, so
    an attempt that was paused, cancelled or repaired away (and keeps executing) cannot keep a
    newer attempt or a run that moved on looking alive to the stale sweep.
    """
    return bool(
        Run.objects.filter(pk=run_pk, status=RunStatus.RUNNING, nodes__attempt_token=token).update(
            heartbeat_at=timezone.now()
        )
    )


class _Heartbeat:
    """Refresh the run's heartbeat from a side thread while node code runs, until the attempt
    is fenced (`attempt_heartbeat` updates nothing) or the node code returns."""

    def __init__(self, run_pk: int, token: str):
        self.run_pk = run_pk
        self.token = token
        self.stop = threading.Event()
        self.interval = max(0.5, min(30.0, settings.FLOWGATE_STALE_AFTER_S / 4))
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stop.wait(self.interval):
                try:
                    if not attempt_heartbeat(self.run_pk, self.token):
                        logger.info("heartbeat of run pk=%s stopped: attempt fenced", self.run_pk)
                        return
                except Exception:  # a lost connection must not end the heartbeat for good
                    logger.warning("heartbeat of run pk=%s failed", self.run_pk, exc_info=True)
                    close_old_connections()
        finally:
            close_old_connections()
            from django.db import connection

            connection.close()


def node_result_accept(
    run_id: str,
    node_id: str,
    token: str,
    *,
    output: dict[str, Any] | None,
    failure: dict[str, Any] | None,
) -> bool:
    """Accept a node result if the run is still running and the node still holds `token`.

    Otherwise the result is discarded and the discard recorded. On failure the node goes back to
    pending with a backoff while attempts remain, else it fails. Returns whether it was accepted.
    """
    return _accept(run_id, node_id, token, output=output, failure=failure)[0]


def _accept(
    run_id: str,
    node_id: str,
    token: str,
    *,
    output: dict[str, Any] | None,
    failure: dict[str, Any] | None,
    inline: bool = False,
) -> tuple[bool, Attempt | None]:
    """`node_result_accept`, also returning the next attempt to execute inline (see
    `_advance_locked`)."""
    now = timezone.now()
    with transaction.atomic():
        # The run row, then this node's row only: every writer of node rows locks the run first,
        # so the run lock serialises them; the rest of the run's nodes stay unlocked.
        run = _runs().select_for_update(of=("self",)).get(run_id=run_id)
        # a re-snapshot (task retry) may have removed the node
        node = RunNode.objects.select_for_update().filter(run=run, node_id=node_id).first()
        if run.status != RunStatus.RUNNING or node is None or str(node.attempt_token) != token:
            if run.status != RunStatus.RUNNING:
                reason = f"run is {run.status}"
            else:
                reason = "attempt superseded" if node is not None else "node no longer in the flow"
            lifecycle_record(
                run,
                "node_result_discarded",
                reason=reason,
                node_id=node_id,
                attempt=node.attempts if node is not None else None,
            )
            return False, None
        spec = NodeSpec(node.spec)
        events: list[LifecycleEvent] = []
        node.attempt_token = None
        node.finished_at = now
        if failure is None:
            blocked = str((output or {}).get("status", "")).lower() == "blocked"
            node.state = NodeState.BLOCKED if blocked else NodeState.COMPLETED
            node.output = output
            event = "node_blocked" if blocked else "node_completed"
            events.append(lifecycle_event(run, event, node_id=node_id, attempt=node.attempts))
            if spec.handoff is not None and not blocked:
                # Robust: a failing artifact write must not stop the dispatch of the next nodes.
                transaction.on_commit(
                    lambda: handoffs.write_artifact(run_id=run_id, node_id=node_id), robust=True
                )
        else:
            retryable = failure.get("retryable", True)
            retry = retryable and node.attempts < spec.max_attempts
            node.output = {"status": "failed", "failed_at": now.isoformat(), **failure}
            node.state = NodeState.PENDING if retry else NodeState.FAILED
            node.not_before = now + timedelta(seconds=spec.backoff_s) if retry else None
            events.append(
                lifecycle_event(
                    run,
                    "node_failed",
                    reason=failure["reason"],
                    node_id=node_id,
                    attempt=node.attempts,
                    failure_kind=failure.get("failure_kind"),
                    will_retry=retry,
                )
            )
        node.save(
            update_fields=[
                "attempt_token",
                "finished_at",
                "state",
                "output",
                "not_before",
                "updated_at",
            ]
        )
        if node.state == NodeState.COMPLETED:
            readiness_release(node)
        fairness.admit_after_commit(run.workspace_id)  # the attempt's slot is free again
        # Advance in the same transaction: the next nodes start without another task hop.
        attempt = _advance_locked(run, now, events, inline=inline, continuing=True)
        state.run_save(run)
        LifecycleEvent.objects.bulk_create(events)
    return True, attempt
