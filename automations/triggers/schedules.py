"""Schedules: created, changed and deleted by the automation's editors (audited), and fired by
beat (`automations.fire_schedules`, every `FLOWGATE_SCHEDULE_TICK_S`).

Exactly one run per fire time, whatever number of beat processes and workers run the task at
once: a fire claims one due schedule row with `SELECT … FOR UPDATE SKIP LOCKED` (others skip it
and take the next), starts the run for its `next_fire_at` and moves `next_fire_at` on, all in
one transaction; and `Run(trigger_id, scheduled_for)` is unique, so even a second claim of the
same fire time could not commit a second run. One transaction per schedule keeps a slow or
failing automation from holding the others back.

Lock order: the schedule row, then the automation row (`services.automation_lock_for_run`), then
the audit chain head. Editors lock the schedule before the automation too.

A schedule acts for its creator, who must still be allowed to change the automation when it
fires (`automations.triggers.owners`); otherwise the fire disables it (audited
`automation.schedule.disabled`) and re-enabling it is refused (409): an editor adds a new one.

A fire that is late (beat was down) starts one run for the earliest missed fire time and moves
on to the first fire time after now: missed fire times collapse into one run. A fire on a
paused or draft automation is skipped (audited `automation.schedule.fire_skipped`) with
`FLOWGATE_SCHEDULE_WHEN_PAUSED=skip` (the default), or left due with `queue`, so the automation's
resume starts one run for it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from automations import scheduling, services
from automations.inputs import validate_inputs
from automations.models import Automation, AutomationStatus, Schedule, TriggerType
from automations.triggers import cron
from automations.triggers.owners import OWNER_NOT_AUTHORISED, owner_refusal
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, FlowgateError, NotFound
from governance.policy import Action, authorize

logger = logging.getLogger(__name__)

WHEN_PAUSED_SKIP = "skip"
WHEN_PAUSED_QUEUE = "queue"
# Fires one task run handles at most; the rest wait for the next tick.
FIRE_BATCH = 500
EDITABLE = ("cron", "timezone", "inputs", "enabled")


class ScheduleNotFound(NotFound):
    code = "SCHEDULE_NOT_FOUND"
    message = "Schedule not found"

    def __init__(self, schedule_id: str):
        super().__init__(scheduleID=schedule_id)


def _check(*, automation: Automation, values: dict[str, Any], now) -> None:
    cron.check(values["cron"], values["timezone"], now)
    validate_inputs(automation.input_schema, values["inputs"])


def _describe(schedule: Schedule) -> dict[str, Any]:
    return {
        "automationID": schedule.automation.automation_id,
        "scheduleID": schedule.schedule_id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
    }


def schedule_create(*, actor: Actor, automation: Automation, data: dict[str, Any]) -> Schedule:
    """Add a schedule to the automation (change permission): the cron expression and time zone
    are checked (400 `SCHEDULE_CRON_INVALID` / `SCHEDULE_TIMEZONE_INVALID`) and the inputs
    against the automation's `input_schema` (400 `RUN_INPUTS_INVALID`) before anything is
    written."""
    authorize(actor, Action.CHANGE, automation)
    now = timezone.now()
    values = {"timezone": "UTC", "inputs": {}, "enabled": True, **data}
    with transaction.atomic():
        locked = services.lock_live(automation)
        _check(automation=locked, values=values, now=now)
        schedule = Schedule.objects.create(
            schedule_id=f"sch-{uuid.uuid4().hex[:20]}",
            workspace=locked.workspace,
            automation=locked,
            cron=values["cron"],
            timezone=values["timezone"],
            inputs=values["inputs"],
            enabled=values["enabled"],
            next_fire_at=(
                cron.next_fire(values["cron"], values["timezone"], now)
                if values["enabled"]
                else None
            ),
            created_by=actor.user,
        )
        audit_record(
            workspace=actor.workspace,
            event_type="automation.schedule.created",
            actor=actor,
            payload=_describe(schedule),
        )
    return schedule


def _locked(schedule: Schedule) -> Schedule:
    """The schedule's row locked (the first lock), then its automation's, re-checked live."""
    locked = (
        Schedule.objects.select_for_update(of=("self",))
        .select_related("created_by")
        .filter(pk=schedule.pk)
        .first()
    )
    if locked is None:
        raise ScheduleNotFound(schedule.schedule_id)
    locked.automation = services.lock_live(schedule.automation)
    return locked


def schedule_update(*, actor: Actor, schedule: Schedule, data: dict[str, Any]) -> Schedule:
    """Change a schedule's cron, time zone, inputs or enabled flag (checked as at create).

    A change of the expression, the time zone or the flag recomputes `next_fire_at` from now:
    re-enabling a schedule does not fire the times it missed while disabled.
    """
    authorize(actor, Action.CHANGE, schedule.automation)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(schedule)
        changed = [name for name in EDITABLE if name in data]
        if not changed:
            return locked
        values = {name: data.get(name, getattr(locked, name)) for name in EDITABLE}
        _check(automation=locked.automation, values=values, now=now)
        if values["enabled"] and not locked.enabled:
            _owner_may_fire(locked)
        for name in changed:
            setattr(locked, name, values[name])
        if {"cron", "timezone", "enabled"} & set(changed):
            locked.next_fire_at = (
                cron.next_fire(locked.cron, locked.timezone, now) if locked.enabled else None
            )
        locked.save(update_fields=[*changed, "next_fire_at", "updated_at"])
        audit_record(
            workspace=actor.workspace,
            event_type="automation.schedule.updated",
            actor=actor,
            payload={**_describe(locked), "changed": changed},
        )
    return locked


def _owner_may_fire(schedule: Schedule) -> None:
    """409 when re-enabling a schedule whose creator may no longer start its runs: it would
    only be disabled again at its next fire (`owners`); an editor adds a new one instead."""
    reason = owner_refusal(schedule.created_by, schedule.automation)
    if reason is not None:
        raise Conflict(
            f"{reason}: add a new schedule instead",
            code=OWNER_NOT_AUTHORISED,
            scheduleID=schedule.schedule_id,
        )


def schedule_delete(*, actor: Actor, schedule: Schedule) -> None:
    """Delete a schedule; the runs it started keep its id in `trigger_id`."""
    authorize(actor, Action.CHANGE, schedule.automation)
    with transaction.atomic():
        locked = _locked(schedule)
        payload = _describe(locked)
        locked.delete()
        audit_record(
            workspace=actor.workspace,
            event_type="automation.schedule.deleted",
            actor=actor,
            payload=payload,
        )


# --- Firing (beat) ---------------------------------------------------------------------------


def _due(now):
    due = Schedule.objects.filter(
        enabled=True, next_fire_at__lte=now, automation__deleted_at__isnull=True
    )
    if settings.FLOWGATE_SCHEDULE_WHEN_PAUSED == WHEN_PAUSED_QUEUE:
        due = due.filter(automation__status=AutomationStatus.ACTIVE)
    return due


def schedules_fire_due(*, now=None, limit: int = FIRE_BATCH) -> list[str]:
    """Fire every schedule due at `now` (default: now), one transaction each; returns the ids
    of the runs started. Safe to run in any number of processes at once (module docstring)."""
    now = now or timezone.now()
    started: list[str] = []
    for _ in range(limit):
        try:
            outcome = _fire_next(now)
        except Exception:  # one broken schedule must not stop the others (it stays due)
            logger.exception("firing a schedule failed")
            continue
        if outcome is None:
            break
        if outcome:
            started.append(outcome)
    return started


def _fire_next(now) -> str | None:
    """Claim one due schedule and fire it: the run id started, "" if the fire was skipped or
    left queued, None when nothing (unclaimed) is due."""
    with transaction.atomic():
        schedule = (
            _due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("automation", "workspace__organization", "created_by")
            .order_by("next_fire_at", "pk")
            .first()
        )
        if schedule is None:
            return None
        fire_at = schedule.next_fire_at
        actor = Actor.trigger(schedule.workspace, f"schedule:{schedule.schedule_id}")
        refusal = owner_refusal(schedule.created_by, schedule.automation)
        if refusal is not None:
            _disable(schedule, actor=actor, fire_at=fire_at, reason=refusal)
            return ""
        try:
            with transaction.atomic():  # a savepoint: a refused start leaves nothing behind
                run = _start(schedule, actor=actor, fire_at=fire_at)
        except Conflict as exc:
            if settings.FLOWGATE_SCHEDULE_WHEN_PAUSED == WHEN_PAUSED_QUEUE:
                return ""  # paused meanwhile: stays due until the automation is active again
            _skipped(schedule, actor=actor, fire_at=fire_at, error=exc)
        except IntegrityError:  # this fire time already has its run: only move on
            logger.warning("schedule %s already fired for %s", schedule.schedule_id, fire_at)
        except FlowgateError as exc:  # e.g. inputs no longer match a changed input_schema
            _skipped(schedule, actor=actor, fire_at=fire_at, error=exc)
        else:
            schedule.last_fired_at = now
            schedule.last_run_id = run.run_id
            _advance(schedule, now)
            return run.run_id
        _advance(schedule, now)
        return ""


def _start(schedule: Schedule, *, actor: Actor, fire_at):
    locked = services.automation_lock_for_run(schedule.automation)
    validate_inputs(locked.input_schema, schedule.inputs)
    run = services.run_create(
        actor=actor,
        locked=locked,
        trigger_type=TriggerType.SCHEDULE,
        inputs=schedule.inputs,
        snapshot=services.automation_snapshot(locked),
        requester_grantors=services.requester_grantors(schedule.created_by, locked),
        requested_by=schedule.created_by,
        trigger_id=schedule.schedule_id,
        scheduled_for=fire_at,
    )
    scheduling.advance_after_commit(run.run_id)
    return run


def _advance(schedule: Schedule, now) -> None:
    """Move `next_fire_at` to the first fire time after now (missed ones collapse)."""
    schedule.next_fire_at = cron.next_fire(schedule.cron, schedule.timezone, now)
    schedule.save(update_fields=["next_fire_at", "last_fired_at", "last_run_id", "updated_at"])


def _disable(schedule: Schedule, *, actor: Actor, fire_at, reason: str) -> None:
    """Its creator may no longer start its runs (`owners`): disabled, audited once."""
    schedule.enabled = False
    schedule.next_fire_at = None
    schedule.save(update_fields=["enabled", "next_fire_at", "updated_at"])
    audit_record(
        workspace=schedule.workspace,
        event_type="automation.schedule.disabled",
        actor=actor,
        payload={
            **_describe(schedule),
            "scheduledFor": fire_at.isoformat(),
            "code": OWNER_NOT_AUTHORISED,
            "reason": reason,
        },
    )


def _skipped(schedule: Schedule, *, actor: Actor, fire_at, error: FlowgateError) -> None:
    audit_record(
        workspace=schedule.workspace,
        event_type="automation.schedule.fire_skipped",
        actor=actor,
        payload={
            **_describe(schedule),
            "scheduledFor": fire_at.isoformat(),
            "code": error.code,
            "reason": error.message,
        },
    )
