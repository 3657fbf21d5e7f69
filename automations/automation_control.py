"""Automation-level pause and resume (SPEC §5 "Automation pause/resume", §10 item 6).

Pausing an automation stops it from starting runs (`run_start` refuses non-active automations
with 409 `AUTOMATION_V2_NOT_ACTIVE`) and pauses every `queued` and `running` run of it. Resuming
makes it active again and, with `resume_runs`, queues again exactly the runs an automation pause
paused and that nothing has touched since.

Authorisation: both are `Action.OPERATE`, like run_now and the run-level pause and resume. They
control execution and change nothing of the spec, so an operator (who holds `operate` but not
`change`) can stop a runaway automation; agents only on automations they created or hold a
grant on. `authorize` audits each denial (`automation.governance.denied`) in its own transaction.

Set-based (10,000 runs in about 1.2 s, `bench/automation_pause.py`, docs/performance.md):
whatever the number of runs, a pause is the same nine statements: lock the automation and
update it, lock the run rows (only ids and versions come back), read the task ids of their
running nodes, one UPDATE over those nodes, one UPDATE over the runs, one multi-row INSERT of
their lifecycle events, the audit event (two). No run is loaded as a model, no query per run.

Which runs a resume resumes: the pause marks each run it pauses with `stop_kind =
automation_paused` (visible in the run JSON: why it is paused) and records in the run's
`run_paused` event the run `version` it left the run at. `resume_runs` takes the runs of the
automation that are `paused`, still carry the marker and still have that version. Every state
change bumps a run's version, so a run resumed, recovered, repaired or paused again by anyone
since is left alone even if that path kept the marker; a run an operator had paused before the
automation pause was never touched by it (it was not queued or running) and is not resumed.

Runs awaiting approval are left as they are: nothing executes while a gate waits for a human,
and the gate stays decidable. (An approve queues the run; the engine then does not claim it
while the automation is paused but pauses it the same way, see `engine._hold_for_automation_pause`.)

Locking, in the project's one order: the automation row (the lock `run_start` takes, so a
racing run_now either committed first and its run is paused here, or waits and gets 409), then
the run rows (in primary-key order), then their node rows, then the audit chain head. The engine
locks a run before its nodes and never the automation, so it cannot deadlock with this; a late
node result waits for the run lock and is then discarded (`node_result_discarded`) because the
run is no longer running and its node no longer holds the attempt token.

Deleting an automation (`services.automation_delete`) cancels its live runs the same set-based
way (`automations.runs.state.runs_cancel`), sharing the fencing of running nodes with the pause.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, IntegerField, OuterRef
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from automations import scheduling
from automations.models import (
    Automation,
    AutomationStatus,
    LifecycleEvent,
    Run,
    RunStatus,
    StopKind,
)
from automations.runs import state
from automations.runs.transitions import PAUSABLE, Cause
from automations.services import lock_live
from governance.actors import Actor
from governance.audit import audit_record
from governance.policy import Action, authorize

DEFAULT_PAUSE_REASON = "paused by operator"
RESUME_REASON = "automation resumed"


@dataclass(frozen=True)
class AutomationControlResult:
    """The automation after the change and how many runs the call paused or resumed."""

    automation: Automation
    runs: int


def automation_pause(
    *, actor: Actor, automation: Automation, reason: str | None = None
) -> AutomationControlResult:
    """Pause the automation and every queued and running run of it, in one transaction.

    Idempotent: pausing a paused automation keeps its status and version, but still pauses any
    run of it that is queued or running (one an approve or a run resume queued meanwhile), and
    is audited like any call. Node tasks of the fenced attempts are revoked after commit.
    """
    authorize(actor, Action.OPERATE, automation)
    reason = (reason or "").strip() or DEFAULT_PAUSE_REASON
    now = timezone.now()
    with transaction.atomic():
        locked = lock_live(automation)
        if locked.status != AutomationStatus.PAUSED:
            locked.status = AutomationStatus.PAUSED
            locked.version += 1
            locked.save(update_fields=["status", "version", "updated_at"])
        # Ids and versions only: the runs are never loaded as models.
        versions = dict(
            Run.objects.select_for_update()
            .filter(automation=locked, status__in=PAUSABLE)
            .order_by("pk")
            .values_list("pk", "version")
        )
        task_ids = _pause_runs(versions, reason=reason, now=now) if versions else []
        audit_record(
            workspace=actor.workspace,
            event_type="automation.governance.paused",
            actor=actor,
            payload={
                "automationID": locked.automation_id,
                "reason": reason,
                "pausedRuns": len(versions),
                "version": locked.version,
            },
        )
        scheduling.revoke_after_commit(task_ids)
    locked.created_by = automation.created_by
    locked.workspace = automation.workspace
    return AutomationControlResult(automation=locked, runs=len(versions))


def _pause_runs(versions: dict[int, int], *, reason: str, now) -> list[str]:
    """Pause the runs `versions` names (pk → version, locked by the caller); return the task
    ids to revoke."""
    run_pks = list(versions)
    fenced_by_run, task_ids = state.fence_runs(run_pks, now=now)
    state.runs_move(
        run_pks,
        Cause.AUTOMATION_PAUSE,
        now=now,
        pause_reason=reason,
        stop_kind=StopKind.AUTOMATION_PAUSED,
        stop_reason=reason,
    )
    LifecycleEvent.objects.bulk_create(
        LifecycleEvent(
            run_id=pk,
            event="run_paused",
            reason=reason,
            stop_kind=StopKind.AUTOMATION_PAUSED,
            metadata={
                "automation_pause": True,
                # The version the UPDATE above left the run at (resume checks it is unchanged).
                "run_version": versions[pk] + 1,
                "fenced_nodes": fenced_by_run.get(pk, []),
            },
        )
        for pk in run_pks
    )
    return task_ids


def automation_resume(
    *, actor: Actor, automation: Automation, resume_runs: bool = False
) -> AutomationControlResult:
    """Make the automation active; with `resume_runs`, queue again the runs its pause holds.

    Idempotent: resuming an active automation keeps its status and version (and with
    `resume_runs` still resumes the runs an earlier pause holds). Audited like any call; the
    resumed runs are scheduled for execution after commit.
    """
    authorize(actor, Action.OPERATE, automation)
    now = timezone.now()
    run_ids: list[str] = []
    with transaction.atomic():
        locked = lock_live(automation)
        if locked.status != AutomationStatus.ACTIVE:
            locked.status = AutomationStatus.ACTIVE
            locked.version += 1
            locked.save(update_fields=["status", "version", "updated_at"])
        if resume_runs:
            run_ids = _resume_runs(locked, now=now)
        audit_record(
            workspace=actor.workspace,
            event_type="automation.governance.resumed",
            actor=actor,
            payload={
                "automationID": locked.automation_id,
                "resumeRuns": resume_runs,
                "resumedRuns": len(run_ids),
                "version": locked.version,
            },
        )
        scheduling.advance_many_after_commit(run_ids)
    locked.created_by = automation.created_by
    locked.workspace = automation.workspace
    return AutomationControlResult(automation=locked, runs=len(run_ids))


def _resume_runs(automation: Automation, *, now) -> list[str]:
    """Queue the runs still held by an automation pause (see the module docstring); return
    their run ids. The caller holds the automation lock; the runs are locked here."""
    pause_left_at = (
        LifecycleEvent.objects.filter(
            run=OuterRef("pk"), event="run_paused", stop_kind=StopKind.AUTOMATION_PAUSED
        )
        .annotate(run_version=Cast(KT("metadata__run_version"), IntegerField()))
        .filter(run_version=OuterRef("version"))
    )
    held = list(
        Run.objects.select_for_update()
        .filter(
            automation=automation, status=RunStatus.PAUSED, stop_kind=StopKind.AUTOMATION_PAUSED
        )
        .filter(Exists(pause_left_at))
        .order_by("pk")
        .values_list("pk", "run_id")
    )
    if not held:
        return []
    pks = [pk for pk, _ in held]
    state.runs_move(pks, Cause.AUTOMATION_RESUME, now=now, resume_reason=RESUME_REASON)
    LifecycleEvent.objects.bulk_create(
        LifecycleEvent(
            run_id=pk,
            event="run_resumed",
            reason=RESUME_REASON,
            metadata={"automation_resume": True},
        )
        for pk in pks
    )
    return [run_id for _, run_id in held]
