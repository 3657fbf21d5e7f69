"""The operator actions of the admin console on automations and runs, each one service call.

Runs: pause, resume, cancel, recover (`automations.runs.control`, i.e. `run_transition`: the
transition table, locks, fencing, lifecycle and audit). Automations: pause, resume (with or
without its paused runs) and run now (`automation_control`, `services.run_start`). The same
definitions back the changelist's bulk actions and the buttons of the object pages.
"""

from __future__ import annotations

from automations.automation_control import automation_pause, automation_resume
from automations.runs.control import run_cancel, run_pause, run_recover, run_resume
from automations.services import run_start
from governance.admin_actions import AdminAction


def _status_after(service):
    def call(actor, run, *, reason="", **_):
        return service(actor=actor, run=run, reason=reason or None).status

    return call


def _cancel(actor, run, *, reason="", **_):
    result = run_cancel(actor=actor, run=run, reason=reason or None)
    if result.already_terminal:
        return f"already {result.run.status}, nothing to cancel"
    return result.run.status


RUN_ACTIONS: dict[str, AdminAction] = {
    "pause": AdminAction("Pause", _status_after(run_pause)),
    "resume": AdminAction("Resume", _status_after(run_resume)),
    "cancel": AdminAction("Cancel", _cancel),
    "recover": AdminAction("Recover", _status_after(run_recover)),
}


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
