"""The one primitive that changes a run's status, and the node changes that go with it.

Callers hold the locks (the project's one order: automation when edited, run, its nodes, its
gates, the audit chain head) and call, inside their transaction:

- `run_move(run, cause, now=...)`: refuse a status the table (`transitions.TRANSITIONS`) does
  not allow for `cause` with the row's 409, else set the target status and the fields every
  change to that status implies (`implied_fields`); `run_save(run)` then bumps the version and
  saves `RUN_FIELDS`, the one list of run fields a transition writes;
- `runs_move(run_pks, cause, now=..., **fields)`: the same for a locked set of runs in one
  UPDATE (automation pause, resume and delete over thousands of runs);
- `cancelled_fields(...)` / `cancel(...)`: what cancelling a run writes, for every cause that
  cancels (operator, gate cancel, gate expiry, automation delete);
- `fence_nodes` / `fence_runs`: send running attempts back to pending without their token (a
  late result is then discarded by the engine), returning the task ids to revoke;
- `reset_nodes`: send a set of nodes (a subtree) back to pending with outputs cleared;
- `nodes_save`: write the touched node rows (`NODE_FIELDS`);
- `supersede_open_gates`: close the open gates of runs that stopped waiting on them, through
  the gate-kind registry (the engine does not know which app owns gates).

Both moves also record the run's domain event (`RUN_EVENTS`: `run.started`, `run.paused`, …,
`governance.events`) in the same transaction, `runs_move` set-based with one INSERT: being the
only writers of `Run.status`, they are the one place no status change can slip past the event
feed and the webhooks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import F

from automations import fairness, scheduling
from automations.models import (
    TERMINAL_STATUSES,
    Automation,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
)
from automations.nodes.registry import gate_kinds
from automations.runs.transitions import TRANSITIONS, Cause, Transition
from governance.errors import Conflict
from governance.events import EventDraft, events_record

# Every run field a status change (or the engine's step around it) writes; the snapshot only
# when an action replaces it.
RUN_FIELDS = [
    "status",
    "detail",
    "last_failure",
    "pause_reason",
    "resume_reason",
    "stop_kind",
    "stop_reason",
    "started_at",
    "finished_at",
    "lease_owner",
    "lease_expires_at",
    "lease_epoch",
    "heartbeat_at",
    "version",
    "updated_at",
]
# The snapshot and the run-wide settings copied from it (`automations.run_nodes.run_settings`).
SNAPSHOT_FIELDS = ["automation_snapshot", "max_parallel", "workspace_root"]
NODE_FIELDS = [
    "state",
    "attempts",
    "output",
    "attempt_token",
    "task_id",
    "not_before",
    "started_at",
    "finished_at",
    "feedback",
    "updated_at",
]


# The domain event each cause records (docs/api.md, "Events"). The moves into and out of a gate
# record none: the gate's own events (`gate.opened`, `gate.decided`) say it, and a gate cancel or
# expiry still records `run.cancelled`, so every end of a run has its event. `CLAIM` records
# `run.started` only the first time a run is claimed (`started_at` unset); later claims
# continue a run that was started already.
RUN_EVENTS: dict[Cause, str] = {
    Cause.CLAIM: "run.started",
    Cause.PAUSE: "run.paused",
    Cause.AUTOMATION_PAUSE: "run.paused",
    Cause.HOLD_FOR_AUTOMATION_PAUSE: "run.paused",
    Cause.STALE_PAUSE: "run.paused",
    Cause.RESUME: "run.resumed",
    Cause.AUTOMATION_RESUME: "run.resumed",
    Cause.RECOVER: "run.resumed",
    Cause.REPAIR: "run.resumed",
    Cause.TASK_RETRY: "run.resumed",
    Cause.TASK_REQUEUE: "run.resumed",
    Cause.TASK_CONTINUE: "run.resumed",
    Cause.CANCEL: "run.cancelled",
    Cause.GATE_CANCEL: "run.cancelled",
    Cause.GATE_EXPIRE: "run.cancelled",
    Cause.AUTOMATION_DELETE: "run.cancelled",
    Cause.COMPLETE: "run.completed",
    Cause.FAIL: "run.failed",
    Cause.STALE_FAIL: "run.failed",
    Cause.BLOCK: "run.blocked",
}

RUN_EVENT_TYPES = {
    "run.started": "the engine started executing the run (its first claim)",
    "run.paused": "the run was paused (operator, automation pause, stale sweep)",
    "run.resumed": "the run was queued again (resume, automation resume, recover, repair, task "
    "retry/requeue/continue)",
    "run.cancelled": "the run was cancelled (operator, gate cancel, gate expiry, automation "
    "delete)",
    "run.completed": "every node of the run completed",
    "run.failed": "a node failed for good (or the stale sweep failed the run)",
    "run.blocked": "the run ended blocked by an upstream node outcome",
}


def run_event_data(
    *, run_id: str, automation_id: str, status: str, previous_status: str, cause: Cause
) -> dict[str, Any]:
    """What a run event carries: which run, where it went from where, and why."""
    return {
        "run_id": run_id,
        "automation_id": automation_id,
        "status": status,
        "previous_status": previous_status,
        "cause": cause.value,
    }


def check(status: str, cause: Cause, *, run_id: str) -> Transition:
    """The table's row for `cause`; 409 with its code when `status` may not leave by it."""
    transition = TRANSITIONS[cause]
    if status not in transition.sources:
        raise Conflict(transition.message, code=transition.code, runID=run_id)
    return transition


def implied_fields(target: str, now: datetime) -> dict[str, Any]:
    """The fields every change to `target` sets: only a running run holds a worker's lease; a
    queued run is neither finished, paused nor stopped; a finished run has `finished_at`."""
    fields: dict[str, Any] = {"status": target}
    if target != RunStatus.RUNNING:
        fields.update(lease_owner="", lease_expires_at=None)
    if target == RunStatus.QUEUED:
        fields.update(finished_at=None, pause_reason="", stop_kind="", stop_reason="")
    elif target in TERMINAL_STATUSES:
        fields["finished_at"] = now
    return fields


def run_move(run: Run, cause: Cause, *, now: datetime) -> str:
    """Move one locked run by `cause` (see the module docstring); returns the source status.
    The caller sets the cause's own fields (reasons, detail) and calls `run_save`."""
    source = run.status
    transition = check(source, cause, run_id=run.run_id)
    first_claim = cause == Cause.CLAIM and run.started_at is None
    for name, value in implied_fields(transition.target, now).items():
        setattr(run, name, value)
    if cause in RUN_EVENTS and (cause != Cause.CLAIM or first_claim):
        automation_id = (
            run.automation.automation_id
            if Run.automation.is_cached(run)
            else Automation.objects.values_list("automation_id", flat=True).get(
                pk=run.automation_id
            )
        )
        data = run_event_data(
            run_id=run.run_id,
            automation_id=automation_id,
            status=transition.target,
            previous_status=source,
            cause=cause,
        )
        events_record([EventDraft(run.workspace_id, RUN_EVENTS[cause], data)])
    return source


def run_save(run: Run, *, snapshot: bool = False) -> None:
    """Write the run's transition fields (and its snapshot with the settings copied from it,
    when replaced); one version up."""
    run.version += 1
    run.save(update_fields=[*RUN_FIELDS, *(SNAPSHOT_FIELDS if snapshot else [])])


def runs_move(run_pks: list[int], cause: Cause, *, now: datetime, **fields: Any) -> int:
    """Move a set of runs the caller locked, in one UPDATE; runs no longer in a source status
    are left alone. Returns how many moved."""
    transition = TRANSITIONS[cause]
    moving = Run.objects.filter(pk__in=run_pks, status__in=transition.sources)
    event_type = RUN_EVENTS.get(cause)
    if event_type is not None:  # read before the UPDATE: the statuses they leave
        events_record(
            EventDraft(
                workspace_id,
                event_type,
                run_event_data(
                    run_id=run_id,
                    automation_id=automation_id,
                    status=transition.target,
                    previous_status=source,
                    cause=cause,
                ),
            )
            for workspace_id, run_id, automation_id, source in moving.order_by("pk").values_list(
                "workspace_id", "run_id", "automation__automation_id", "status"
            )
        )
    return moving.update(
        **implied_fields(transition.target, now),
        **fields,
        version=F("version") + 1,
        updated_at=now,
    )


def cancelled_fields(*, reason: str, stop_kind: str) -> dict[str, str]:
    """What a cancelled run says about why, whatever cancelled it."""
    return {"detail": reason, "stop_kind": stop_kind, "stop_reason": reason}


def cancel(run: Run, cause: Cause, *, reason: str, stop_kind: str, now: datetime) -> str:
    """Cancel one locked run (operator cancel, gate cancel, gate expiry); returns the source
    status. Nodes are untouched: nothing downstream of an unfinished node ever runs."""
    source = run_move(run, cause, now=now)
    for name, value in cancelled_fields(reason=reason, stop_kind=stop_kind).items():
        setattr(run, name, value)
    return source


def runs_cancel(
    run_pks: list[int],
    cause: Cause,
    *,
    reason: str,
    stop_kind: str,
    now: datetime,
    **metadata: Any,
) -> int:
    """Cancel a locked set of runs, set-based (automation delete): the same statements whatever
    their number. What `cancel` gives one run, plus running nodes fenced (tasks revoked after
    commit), open gates superseded, one `run_stopped` each (with `metadata`)."""
    fenced_by_run, task_ids = fence_runs(run_pks, now=now)
    moved = runs_move(
        run_pks, cause, now=now, **cancelled_fields(reason=reason, stop_kind=stop_kind)
    )
    # After the move, as for one run (`control`): `run.cancelled` precedes the
    # `gate.superseded` it causes.
    gates_by_run = supersede_open_gates(run_pks, now=now)
    LifecycleEvent.objects.bulk_create(
        LifecycleEvent(
            run_id=pk,
            event="run_stopped",
            reason=reason,
            stop_kind=stop_kind,
            metadata={
                **metadata,
                "fenced_nodes": fenced_by_run.get(pk, []),
                "superseded_gates": gates_by_run.get(pk, []),
            },
        )
        for pk in run_pks
    )
    scheduling.revoke_after_commit(task_ids)
    return moved


# --- nodes --------------------------------------------------------------------------------------


def fence_nodes(nodes: Iterable[RunNode]) -> tuple[list[str], list[str]]:
    """Send the running nodes among `nodes` (locked) back to pending without their attempt
    token; return their node ids (changed in memory: save them) and task ids to revoke. The
    caller admits the workspace's held attempts into the freed slots
    (`fairness.admit_after_commit`)."""
    fenced = [n for n in nodes if n.state == NodeState.RUNNING]
    task_ids = [n.task_id for n in fenced if n.task_id]
    for node in fenced:
        node.state = NodeState.PENDING
        node.attempt_token = None
        node.task_id = ""
    return [n.node_id for n in fenced], task_ids


def fence_runs(run_pks: list[int], *, now: datetime) -> tuple[dict[int, list[str]], list[str]]:
    """`fence_nodes` set-based for locked runs, written at once; returns the fenced node ids
    by run and the task ids to revoke. The attempt still counts. The freed slots go to the
    workspaces' held attempts after commit."""
    running = RunNode.objects.filter(run_id__in=run_pks, state=NodeState.RUNNING)
    fenced = list(running.values_list("run_id", "node_id", "task_id", "run__workspace_id"))
    by_run: dict[int, list[str]] = defaultdict(list)
    for run_pk, node_id, _, _ in sorted(fenced):
        by_run[run_pk].append(node_id)
    if fenced:
        running.update(state=NodeState.PENDING, attempt_token=None, task_id="", updated_at=now)
    for workspace_id in {workspace_id for *_, workspace_id in fenced}:
        fairness.admit_after_commit(workspace_id)
    return by_run, [task_id for _, _, task_id, _ in fenced if task_id]


def reset_nodes(
    nodes: dict[str, RunNode], node_ids: Iterable[str], *, keep_attempts: bool
) -> tuple[list[str], list[str]]:
    """Send nodes (a subtree, locked) back to pending with their output cleared (attempts too,
    unless kept). Returns the reset node ids and `cleared_outputs`: those that held an output.
    Changed in memory: save them with `nodes_save`."""
    reset, cleared = [], []
    for node_id in sorted(node_ids):
        node = nodes.get(node_id)
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
        reset.append(node_id)
    return reset, cleared


def nodes_save(nodes: list[RunNode], *, now: datetime) -> None:
    """Write node rows changed in memory (`NODE_FIELDS`)."""
    for node in nodes:
        node.updated_at = now  # bulk_update does not apply `auto_now`
    if len(nodes) == 1:
        nodes[0].save(update_fields=NODE_FIELDS)  # a plain UPDATE, no CASE
    elif nodes:
        RunNode.objects.bulk_update(nodes, NODE_FIELDS)


# --- gates --------------------------------------------------------------------------------------


def supersede_open_gates(run_pks: list[int], *, now: datetime) -> dict[int, list[str]]:
    """Close the open gates of locked runs that stopped waiting on them; gate ids by run."""
    closed: dict[int, list[str]] = defaultdict(list)
    for kind in gate_kinds():
        for run_pk, gate_ids in kind.supersede(run_pks=run_pks, now=now).items():
            closed[run_pk].extend(gate_ids)
    return dict(closed)
