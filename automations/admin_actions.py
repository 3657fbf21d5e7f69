"""The operator actions of the admin console on automations and runs, each one service call.

Runs: pause, resume, cancel, recover (`automations.runs.control`, i.e. `run_transition`: the
transition table, locks, fencing, lifecycle and audit) and, from a node of the run page, task
retry / requeue / continue and repair (`automations.runs.repair`, the services the API's
run-control endpoints call). Automations: pause, resume (with or without its paused runs) and
run now (`automation_control`, `services.run_start`). The same definitions back the
changelist's bulk actions and the buttons of the object pages.

Each run action names its row of the run state machine (`cause`), so a page offers it only when
`transitions.operator_actions_allowed` does; a destructive one carries the question the console
asks before it runs (`confirm`).
"""

from __future__ import annotations

from dataclasses import dataclass

from automations.automation_control import automation_pause, automation_resume
from automations.runs.control import run_cancel, run_pause, run_recover, run_resume
from automations.runs.repair import (
    run_repair,
    run_task_continue,
    run_task_requeue,
    run_task_retry,
)
from automations.runs.transitions import Cause
from automations.services import run_start
from governance.admin_actions import AdminAction


@dataclass(frozen=True)
class RunAction:
    """One operator action on a run as the console offers it.

    `confirm` is the question shown before a destructive action runs (empty: it runs at once);
    `previews_reset` says the confirmation shows which nodes the action resets
    (`repair.run_reset_preview`); `per_node` actions act on one node of the run.
    """

    cause: Cause
    action: AdminAction
    confirm: str = ""
    previews_reset: bool = False
    per_node: bool = False

    @property
    def label(self) -> str:
        return self.action.label


def _status_after(service):
    def call(actor, run, *, reason="", **_):
        return service(actor=actor, run=run, reason=reason or None).status

    return call


def _cancel(actor, run, *, reason="", **_):
    result = run_cancel(actor=actor, run=run, reason=reason or None)
    if result.already_terminal:
        return f"already {result.run.status}, nothing to cancel"
    return result.run.status


def _node_action(service, verb: str):
    def call(actor, run, *, node_id="", reason="", **_):
        result = service(actor=actor, run=run, node_id=node_id, reason=reason or None)
        reset = ", ".join(result.extra.get("reset_nodes", [])) or "nothing"
        return f"{verb} {node_id} (reset: {reset}), {result.run.status}"

    return call


def _repair(actor, run, *, node_id="", reason="", prompt=None, template_id=None,
            model_policy=None, **_):  # fmt: skip
    result = run_repair(
        actor=actor,
        run=run,
        node_id=node_id,
        prompt=prompt,
        template_id=template_id,
        model_policy=model_policy,
        reason=reason or None,
    )
    return (
        f"repaired {node_id} (automation version {result.automation.version}), {result.run.status}"
    )


RESET_WARNING = "their outputs are cleared and they run again"

RUN_PAGE_ACTIONS: dict[str, RunAction] = {
    "pause": RunAction(Cause.PAUSE, AdminAction("Pause", _status_after(run_pause))),
    "resume": RunAction(Cause.RESUME, AdminAction("Resume", _status_after(run_resume))),
    "cancel": RunAction(
        Cause.CANCEL,
        AdminAction("Cancel", _cancel),
        confirm="Cancel this run? It stops for good and cannot be resumed.",
    ),
    "recover": RunAction(
        Cause.RECOVER,
        AdminAction("Recover", _status_after(run_recover)),
        confirm=(
            "Recover this run? Its failed or blocked nodes and everything after them are reset "
            f"({RESET_WARNING}) and the run is queued again."
        ),
    ),
}

NODE_ACTIONS: dict[str, RunAction] = {
    "retry": RunAction(
        Cause.TASK_RETRY,
        AdminAction("Retry", _node_action(run_task_retry, "retried")),
        confirm=f"Retry this node? It and the nodes after it are reset ({RESET_WARNING}).",
        previews_reset=True,
        per_node=True,
    ),
    "requeue": RunAction(
        Cause.TASK_REQUEUE,
        AdminAction("Requeue", _node_action(run_task_requeue, "requeued")),
        confirm=f"Requeue this node? It and the nodes after it are reset ({RESET_WARNING}).",
        previews_reset=True,
        per_node=True,
    ),
    "continue": RunAction(
        Cause.TASK_CONTINUE,
        AdminAction("Continue", _node_action(run_task_continue, "continued")),
        confirm="Continue this blocked node? Its output is cleared and it runs again.",
        per_node=True,
    ),
}

# Offered from the node table as a link to its own page (it takes inputs, and shows the reset
# preview next to them before the operator confirms).
REPAIR = RunAction(Cause.REPAIR, AdminAction("Repair", _repair), per_node=True)


def _automation_pause(actor, automation, *, reason="", **_):
    result = automation_pause(actor=actor, automation=automation, reason=reason or None)
    return f"paused ({result.runs} run(s) paused)"


def _automation_resume(actor, automation, *, resume_runs=False, **_):
    result = automation_resume(actor=actor, automation=automation, resume_runs=resume_runs)
    resumed = f", {result.runs} run(s) resumed" if resume_runs else ""
    return f"active{resumed}"


def _run_now(actor, automation, **_):
    return f"started {run_start(actor=actor, automation=automation).run_id}"


AUTOMATION_ACTIONS: dict[str, AdminAction] = {
    "pause": AdminAction("Pause", _automation_pause),
    "resume": AdminAction("Resume", _automation_resume),
    "run_now": AdminAction("Run now", _run_now),
}
