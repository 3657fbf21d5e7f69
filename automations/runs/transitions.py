"""Every change of a run's status, in one table: the cause, the statuses it may leave, the
status it reaches, and the 409 a refused change answers.

`automations.runs.state.run_move` (one run, locked by the caller) and `runs_move` (a locked set
of runs, set-based) are the only code that writes `Run.status`, and they read nothing else to
decide whether a change is allowed. A test walks the table: every (cause, status) pair not in
it is refused.

Operator actions (the reference notes §1.4, §3.1, §6 with SPEC §5/§10):
- pause: `queued`/`running` only. A run parked on a gate, or already paused, is not pausable.
- resume: `paused` only; it clears the stop fields.
- cancel: every non-terminal status, `blocked` and `awaiting_approval` included. For cancel the
  terminal statuses are the reference's: `completed`, `failed`, `cancelled`; cancelling one of
  those is an idempotent 200 with `alreadyTerminal` and changes nothing (`OPERATOR_ACTIONS`'
  `noop_from`, checked before the table).
- recover: `failed`, `paused`, `blocked`, and `completed` when a node holds blocked evidence (the
  last is checked by the action itself, with the same 409).
- repair and the task operations: anything but the states the engine may be executing
  (`queued`, `running`, `pausing`), so `cancelled` and `completed` runs can be revived.

The engine claims queued runs, parks a run on a gate, and ends it (`completed`, `failed`,
`blocked`), or holds a queued run of a paused automation; gate decisions move a run waiting on
a gate back to `queued` (approve, rework) or to `cancelled` (cancel, expiry); automation pause,
resume and delete move many runs at once; the stale sweep pauses or fails a running run whose
node stopped heartbeating.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from automations.models import ACTIVE_STATUSES, RunStatus

ALL_STATUSES = frozenset(RunStatus)
# Terminal for cancel (reference §1.4 (9)): `blocked` is recoverable and still cancellable.
CANCEL_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
CANCELLABLE = ALL_STATUSES - CANCEL_TERMINAL
PAUSABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
RECOVERABLE = frozenset(
    {RunStatus.FAILED, RunStatus.PAUSED, RunStatus.BLOCKED, RunStatus.COMPLETED}
)
# Repair and task resets: never while the engine may be executing the run.
MUTABLE = ALL_STATUSES - ACTIVE_STATUSES
AWAITING = frozenset({RunStatus.AWAITING_APPROVAL})
RUNNING = frozenset({RunStatus.RUNNING})
QUEUED = frozenset({RunStatus.QUEUED})
PAUSED = frozenset({RunStatus.PAUSED})


class Cause(StrEnum):
    """Why a run's status changes. The first eight are the operator actions."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RECOVER = "recover"
    REPAIR = "repair"
    TASK_RETRY = "task_retry"
    TASK_REQUEUE = "task_requeue"
    TASK_CONTINUE = "task_continue"
    # The engine.
    CLAIM = "claim"
    HOLD_FOR_AUTOMATION_PAUSE = "hold_for_automation_pause"
    GATE_OPEN = "gate_open"
    COMPLETE = "complete"
    FAIL = "fail"
    BLOCK = "block"
    # Gate decisions and expiry.
    GATE_APPROVE = "gate_approve"
    GATE_REWORK = "gate_rework"
    GATE_CANCEL = "gate_cancel"
    GATE_EXPIRE = "gate_expire"
    # Automation-level changes, set-based over the automation's runs.
    AUTOMATION_PAUSE = "automation_pause"
    AUTOMATION_RESUME = "automation_resume"
    AUTOMATION_DELETE = "automation_delete"
    # The stale sweep.
    STALE_PAUSE = "stale_pause"
    STALE_FAIL = "stale_fail"


@dataclass(frozen=True)
class Transition:
    """One row: a run in a status of `sources` may move to `target` for `cause`; any other
    status is refused with 409 `code` / `message`."""

    cause: Cause
    sources: frozenset[str]
    target: str
    code: str
    message: str


TASK_RESET_MESSAGE = (
    "Run must be paused, blocked, failed, awaiting approval, completed, or cancelled "
    "before task reset"
)
NOT_AWAITING = "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
NOT_RUNNING = "AUTOMATION_V2_RUN_NOT_RUNNING"


def _rows(*rows: tuple) -> dict[Cause, Transition]:
    return {row[0]: Transition(*row) for row in rows}


TRANSITIONS: dict[Cause, Transition] = _rows(
    # cause, sources, target, code, message
    (Cause.PAUSE, PAUSABLE, RunStatus.PAUSED,
     "AUTOMATION_V2_RUN_NOT_PAUSABLE", "Run is not pausable"),
    (Cause.RESUME, PAUSED, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_NOT_PAUSED", "Run is not paused"),
    (Cause.CANCEL, CANCELLABLE, RunStatus.CANCELLED,
     "AUTOMATION_V2_RUN_TERMINAL", "Run already terminal"),
    (Cause.RECOVER, RECOVERABLE, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_NOT_RECOVERABLE", "Run is not recoverable"),
    (Cause.REPAIR, MUTABLE, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_NOT_REPAIRABLE",
     "Run must be paused, failed, awaiting approval, or cancelled before repair"),
    (Cause.TASK_RETRY, MUTABLE, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_TASK_NOT_MUTABLE", TASK_RESET_MESSAGE),
    (Cause.TASK_REQUEUE, MUTABLE, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_TASK_NOT_MUTABLE", TASK_RESET_MESSAGE),
    (Cause.TASK_CONTINUE, MUTABLE, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_TASK_NOT_CONTINUEABLE",
     "Run must be paused, blocked, failed, awaiting approval, completed, or cancelled "
     "before task continue"),
    (Cause.CLAIM, QUEUED, RunStatus.RUNNING,
     "AUTOMATION_V2_RUN_NOT_QUEUED", "Run is not queued"),
    (Cause.HOLD_FOR_AUTOMATION_PAUSE, QUEUED, RunStatus.PAUSED,
     "AUTOMATION_V2_RUN_NOT_QUEUED", "Run is not queued"),
    (Cause.GATE_OPEN, RUNNING, RunStatus.AWAITING_APPROVAL, NOT_RUNNING, "Run is not running"),
    (Cause.COMPLETE, RUNNING, RunStatus.COMPLETED, NOT_RUNNING, "Run is not running"),
    (Cause.FAIL, RUNNING, RunStatus.FAILED, NOT_RUNNING, "Run is not running"),
    (Cause.BLOCK, RUNNING, RunStatus.BLOCKED, NOT_RUNNING, "Run is not running"),
    (Cause.GATE_APPROVE, AWAITING, RunStatus.QUEUED, NOT_AWAITING, "Run is not awaiting approval"),
    (Cause.GATE_REWORK, AWAITING, RunStatus.QUEUED, NOT_AWAITING, "Run is not awaiting approval"),
    (Cause.GATE_CANCEL, AWAITING, RunStatus.CANCELLED,
     NOT_AWAITING, "Run is not awaiting approval"),
    (Cause.GATE_EXPIRE, AWAITING, RunStatus.CANCELLED,
     NOT_AWAITING, "Run is not awaiting approval"),
    (Cause.AUTOMATION_PAUSE, PAUSABLE, RunStatus.PAUSED,
     "AUTOMATION_V2_RUN_NOT_PAUSABLE", "Run is not pausable"),
    (Cause.AUTOMATION_RESUME, PAUSED, RunStatus.QUEUED,
     "AUTOMATION_V2_RUN_NOT_PAUSED", "Run is not paused"),
    (Cause.AUTOMATION_DELETE, CANCELLABLE, RunStatus.CANCELLED,
     "AUTOMATION_V2_RUN_TERMINAL", "Run already terminal"),
    (Cause.STALE_PAUSE, RUNNING, RunStatus.PAUSED, NOT_RUNNING, "Run is not running"),
    (Cause.STALE_FAIL, RUNNING, RunStatus.FAILED, NOT_RUNNING, "Run is not running"),
)  # fmt: skip


@dataclass(frozen=True)
class OperatorAction:
    """How an operator action on one run is recorded (`automations.runs.control`).

    `default_reason` is formatted with `node_id` (task actions and repair); `lifecycle` are the
    events recorded, in order, each with the reason; `verb` names the audit event
    `automation.run.<verb>`. `locks_automation` says the action edits the live automation,
    whose row is then locked before the run row (the order automation pause and `run_start`
    use). `noop_from`: statuses where the action changes nothing and answers 200.
    """

    cause: Cause
    lifecycle: tuple[str, ...]
    verb: str
    default_reason: str
    noop_from: frozenset[str] = frozenset()
    locks_automation: bool = False

    @property
    def transition(self) -> Transition:
        return TRANSITIONS[self.cause]

    @property
    def audit_event(self) -> str:
        return f"automation.run.{self.verb}"

    def reason(self, given: str | None, *, node_id: str = "") -> str:
        """The original's `reason_or_default`: the trimmed reason, or the default when blank."""
        return (given or "").strip() or self.default_reason.format(node_id=node_id)


OPERATOR_ACTIONS: dict[Cause, OperatorAction] = {
    a.cause: a
    for a in (
        OperatorAction(
            Cause.PAUSE, ("run_pause_requested", "run_paused"), "paused", "paused by operator"
        ),
        OperatorAction(Cause.RESUME, ("run_resumed",), "resumed", "resumed by operator"),
        OperatorAction(
            Cause.CANCEL,
            ("run_stopped",),
            "cancelled",
            "cancelled by operator",
            noop_from=CANCEL_TERMINAL,
        ),
        # `run_recovered_from_pause` instead when a paused run is recovered with no reset.
        OperatorAction(Cause.RECOVER, ("run_recovered",), "recovered", "recovered by operator"),
        OperatorAction(
            Cause.REPAIR,
            ("run_step_repaired",),
            "repaired",
            "repaired node `{node_id}` and reset affected subtree",
            locks_automation=True,
        ),
        OperatorAction(
            Cause.TASK_RETRY,
            ("run_task_retried",),
            "task_retried",
            "retried task `{node_id}` and reset affected subtree",
        ),
        OperatorAction(
            Cause.TASK_REQUEUE,
            ("run_task_requeued",),
            "task_requeued",
            "requeued task `{node_id}` and reset affected subtree",
        ),
        OperatorAction(
            Cause.TASK_CONTINUE,
            ("run_task_continued",),
            "task_continued",
            "continued blocked task `{node_id}`",
        ),
    )
}


def operator_actions_allowed(status: str) -> frozenset[Cause]:
    """The operator actions the table lets a run in `status` take: what a surface offers.

    Cancelling a terminal run is a harmless no-op for the API (`noop_from`), but it is not
    offered. Recover of a completed run also needs blocked evidence (`control.run_recover`
    checks it; a surface with the nodes at hand can narrow this set the same way).
    """
    return frozenset(
        cause
        for cause, action in OPERATOR_ACTIONS.items()
        if status in action.transition.sources and status not in action.noop_from
    )
