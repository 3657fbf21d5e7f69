"""The run-control transition table: which operator action may leave which run status, and how.

One row per action. `automations.run_control.run_transition` is the only code that reads it: it
locks the run, refuses a source status outside `allowed` with the row's 409 (`code`, `message`,
`runID`), applies the action, moves the run to `target`, records `lifecycle` and audits
`automation.run.<verb>`. Nothing else compares run statuses to decide whether an operator action
is allowed.

Sources are the reference notes (§1.4, §3.1, §6) with SPEC §5/§10:
- pause: `queued`/`running` only. A run parked on a gate, or already paused, is not pausable.
- resume: `paused` only; it clears the stop fields.
- cancel: every non-terminal status, `blocked` and `awaiting_approval` included. For cancel the
  terminal statuses are the reference's: `completed`, `failed`, `cancelled`; cancelling one of
  those is an idempotent 200 with `alreadyTerminal` and changes nothing (`noop_from`).
- recover: `failed`, `paused`, `blocked`, and `completed` when a node holds blocked evidence (the
  last is checked by the action itself, with the same 409).
- repair and the task operations: anything but the states the engine may be executing
  (`queued`, `running`, `pausing`), so `cancelled` and `completed` runs can be revived.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from automations.models import ACTIVE_STATUSES, RunStatus

ALL_STATUSES = frozenset(RunStatus)
# Terminal for cancel (reference §1.4 (9)): `blocked` is recoverable and still cancellable.
CANCEL_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
PAUSABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
RECOVERABLE = frozenset(
    {RunStatus.FAILED, RunStatus.PAUSED, RunStatus.BLOCKED, RunStatus.COMPLETED}
)
# Repair and task resets: never while the engine may be executing the run.
MUTABLE = ALL_STATUSES - ACTIVE_STATUSES


class RunAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RECOVER = "recover"
    REPAIR = "repair"
    TASK_RETRY = "task_retry"
    TASK_REQUEUE = "task_requeue"
    TASK_CONTINUE = "task_continue"


@dataclass(frozen=True)
class Transition:
    """One operator action on a run.

    `default_reason` is formatted with `node_id` (task actions and repair); `lifecycle` are the
    events recorded, in order, each with the reason. `locks_automation` says the action edits
    the live automation, whose row is then locked before the run row (the order automation
    pause and `run_start` use).
    """

    action: RunAction
    allowed: frozenset[str]
    code: str
    message: str
    target: str
    lifecycle: tuple[str, ...]
    verb: str
    default_reason: str
    noop_from: frozenset[str] = frozenset()
    locks_automation: bool = False

    @property
    def audit_event(self) -> str:
        return f"automation.run.{self.verb}"

    def reason(self, given: str | None, *, node_id: str = "") -> str:
        """The original's `reason_or_default`: the trimmed reason, or the default when blank."""
        return (given or "").strip() or self.default_reason.format(node_id=node_id)


TASK_RESET_MESSAGE = (
    "Run must be paused, blocked, failed, awaiting approval, completed, or cancelled "
    "before task reset"
)

TRANSITIONS: dict[RunAction, Transition] = {
    t.action: t
    for t in (
        Transition(
            action=RunAction.PAUSE,
            allowed=PAUSABLE,
            code="AUTOMATION_V2_RUN_NOT_PAUSABLE",
            message="Run is not pausable",
            target=RunStatus.PAUSED,
            lifecycle=("run_pause_requested", "run_paused"),
            verb="paused",
            default_reason="paused by operator",
        ),
        Transition(
            action=RunAction.RESUME,
            allowed=frozenset({RunStatus.PAUSED}),
            code="AUTOMATION_V2_RUN_NOT_PAUSED",
            message="Run is not paused",
            target=RunStatus.QUEUED,
            lifecycle=("run_resumed",),
            verb="resumed",
            default_reason="resumed by operator",
        ),
        Transition(
            action=RunAction.CANCEL,
            allowed=ALL_STATUSES - CANCEL_TERMINAL,
            # Never raised: every status is either allowed or an idempotent no-op.
            code="AUTOMATION_V2_RUN_TERMINAL",
            message="Run already terminal",
            target=RunStatus.CANCELLED,
            lifecycle=("run_stopped",),
            verb="cancelled",
            default_reason="cancelled by operator",
            noop_from=CANCEL_TERMINAL,
        ),
        Transition(
            action=RunAction.RECOVER,
            allowed=RECOVERABLE,
            code="AUTOMATION_V2_RUN_NOT_RECOVERABLE",
            message="Run is not recoverable",
            target=RunStatus.QUEUED,
            # `run_recovered_from_pause` instead when a paused run is recovered with no reset.
            lifecycle=("run_recovered",),
            verb="recovered",
            default_reason="recovered by operator",
        ),
        Transition(
            action=RunAction.REPAIR,
            allowed=MUTABLE,
            code="AUTOMATION_V2_RUN_NOT_REPAIRABLE",
            message="Run must be paused, failed, awaiting approval, or cancelled before repair",
            target=RunStatus.QUEUED,
            lifecycle=("run_step_repaired",),
            verb="repaired",
            default_reason="repaired node `{node_id}` and reset affected subtree",
            locks_automation=True,
        ),
        Transition(
            action=RunAction.TASK_RETRY,
            allowed=MUTABLE,
            code="AUTOMATION_V2_RUN_TASK_NOT_MUTABLE",
            message=TASK_RESET_MESSAGE,
            target=RunStatus.QUEUED,
            lifecycle=("run_task_retried",),
            verb="task_retried",
            default_reason="retried task `{node_id}` and reset affected subtree",
        ),
        Transition(
            action=RunAction.TASK_REQUEUE,
            allowed=MUTABLE,
            code="AUTOMATION_V2_RUN_TASK_NOT_MUTABLE",
            message=TASK_RESET_MESSAGE,
            target=RunStatus.QUEUED,
            lifecycle=("run_task_requeued",),
            verb="task_requeued",
            default_reason="requeued task `{node_id}` and reset affected subtree",
        ),
        Transition(
            action=RunAction.TASK_CONTINUE,
            allowed=MUTABLE,
            code="AUTOMATION_V2_RUN_TASK_NOT_CONTINUEABLE",
            message=(
                "Run must be paused, blocked, failed, awaiting approval, completed, or cancelled "
                "before task continue"
            ),
            target=RunStatus.QUEUED,
            lifecycle=("run_task_continued",),
            verb="task_continued",
            default_reason="continued blocked task `{node_id}`",
        ),
    )
}
