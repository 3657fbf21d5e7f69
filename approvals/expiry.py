"""Gate expiry, reminders and escalation: the periodic sweep of SPEC §6.5 (reference §4.6).

`sweep_gates` (Celery beat, `approvals.sweep_gates`, every `FLOWGATE_SWEEP_INTERVAL_S`) finds
its candidates with one query — open gates of runs awaiting approval that are past
`expires_at` or due a reminder — and handles each in a transaction of its own with
`gate_sweep_one`, which re-checks everything under the locks. Lock order as everywhere
(STYLE.md): the run row, then the gate row, then (inside `audit_record`) the audit chain head.
Each change is announced after commit by a signal of `approvals.signals` (chat cards follow).

What happens to a gate (`expiry_policy`, normalised by `approvals.services.gate_open`):
- **reminders** — while the gate is open and before it expires, every `remind_every_s` since it
  was requested (or last reminded): `reminder_count + 1`, `last_reminded_at`, lifecycle
  `approval_gate_reminder_due`, after commit `signals.gate_reminded`. A sweep that ran late sends
  one reminder, not a burst for every missed interval. Reminders follow `remind_every_s` whatever
  `on_expiry` is (the flow validator requires it for `remind` and allows it for the others).
- **at expiry, `cancel`** (the default) **and `remind`** — fail closed: a settling GateDecision
  `expired` (source `system`), gate `expired`, run `cancelled` with `stop_kind = cancelled`,
  lifecycle `approval_gate_expired` + `run_cancelled`, audit `automation.governance.gate_expired`
  (actor system), after commit `signals.gate_closed` (cards show the outcome).
- **at expiry, `escalate`, first time** — the `escalate_to` usernames that are human members of
  the run's workspace are recorded on the gate (`escalated_to`, `escalated_at`): they may decide
  this opening, and only it (`approvals.policy.escalation_grants`, which the decision and the
  pending list share); nothing is granted on the automation, so the authority ends when the
  opening closes and never reaches its other runs or a later round. The gate gets one more full
  window: `expires_at = now + expires_after_s` (counted from the escalation, so the escalated
  reviewers get the whole window even when the sweep ran late). Lifecycle
  `approval_gate_escalated`, audit `automation.governance.gate_escalated` (naming them), after
  commit `signals.gate_escalated`. The run stays `awaiting_approval`.
- **at expiry, `escalate`, again** (or when no `escalate_to` name is a human member to escalate
  to) — cancelled as above: escalation extends a gate at most once, then fails closed.

Escalation stands in for `review` only: it never confers `review_elevated` or data-class
clearances, so an elevated or classified gate still needs reviewers who hold that authority.

A human decision racing the sweep on one gate: the decision service locks the run first too, so
the two serialise; whichever commits second sees the gate closed (the sweep re-checks and skips).
Should a settling decision still slip in, the partial unique constraint
`one_settling_decision_per_gate` makes the sweep's insert fail; it rolls back and skips the gate.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DurationField, ExpressionWrapper, IntegerField, Q, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from approvals import events as gate_events
from approvals import signals
from approvals.models import Decision, Gate, GateDecision, GateStatus, Surface
from automations.lifecycle import lifecycle_event
from automations.models import LifecycleEvent, Run, RunStatus, StopKind
from automations.runs import state
from automations.runs.transitions import Cause
from governance.actors import SYSTEM, Actor
from governance.audit import audit_record
from governance.models import Membership, PrincipalKind

logger = logging.getLogger(__name__)

BATCH = 200
SWEEP_ACTOR = "gate_sweep"

EXPIRED = "expired"
REMINDED = "reminded"
ESCALATED = "escalated"


def _reminder_due_at():
    """SQL: when the next reminder of a gate is due (NULL when it has no `remind_every_s`)."""
    every = Cast(KT("expiry_policy__remind_every_s"), IntegerField())
    return Coalesce("last_reminded_at", "requested_at") + ExpressionWrapper(
        every * Value(timedelta(seconds=1)), output_field=DurationField()
    )


def gate_candidates(now: datetime) -> list[str]:
    """Ids of open gates (of runs awaiting approval) that are expired or due a reminder, oldest
    deadline first; one query, at most `BATCH` (the next sweep takes the rest)."""
    return list(
        Gate.objects.filter(status=GateStatus.OPEN, run__status=RunStatus.AWAITING_APPROVAL)
        .annotate(reminder_due_at=_reminder_due_at())
        .filter(Q(expires_at__lte=now) | Q(reminder_due_at__lte=now))
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:BATCH]
    )


def sweep_gates(*, now: datetime | None = None) -> dict[str, str]:
    """Apply reminders and expiry policies to every due gate; returns `{gate_id: action}` for
    the gates acted on. Idempotent: a second sweep at the same time does nothing."""
    now = now or timezone.now()
    done = {}
    for gate_id in gate_candidates(now):
        try:
            action = gate_sweep_one(gate_id, now=now)
        except Exception:  # one broken gate must not stop the sweep of the others
            logger.exception("gate sweep failed gate_id=%s", gate_id)
            continue
        if action:
            done[gate_id] = action
    return done


def gate_sweep_one(gate_id: str, *, now: datetime) -> str | None:
    """Remind, escalate or expire one gate, re-checked under the run and gate locks.

    Returns the action taken (`reminded`, `escalated`, `expired`) or None when nothing was due
    any more (decided, superseded, already handled by a concurrent sweep).
    """
    run_pk = Gate.objects.filter(pk=gate_id).values_list("run_id", flat=True).first()
    if run_pk is None:
        return None
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("automation", "workspace__organization")
            .get(pk=run_pk)
        )
        gate = Gate.objects.select_for_update().get(pk=gate_id)
        if gate.status != GateStatus.OPEN or run.status != RunStatus.AWAITING_APPROVAL:
            return None
        if gate.expires_at <= now:
            escalate = (gate.expiry_policy or {}).get("on_expiry") == "escalate"
            if escalate and not gate.escalated_at and _escalate(run, gate, now):
                return ESCALATED
            return EXPIRED if _expire(run, gate, now) else None
        if _reminder_due(gate, now):
            _remind(run, gate, now)
            return REMINDED
    return None


def _reminder_due(gate: Gate, now: datetime) -> bool:
    every = (gate.expiry_policy or {}).get("remind_every_s")
    if not isinstance(every, int) or every <= 0:
        return False
    due = (gate.last_reminded_at or gate.requested_at) + timedelta(seconds=every)
    return due <= now < gate.expires_at


def _gate_metadata(gate: Gate, **extra: Any) -> dict[str, Any]:
    return {"node_id": gate.node_id, "gate_id": gate.pk, "round": gate.round, **extra}


def _notification_key(run: Run, gate: Gate, kind: str, n: int) -> str:
    """The original's idempotency key for chat notifications (reference §4.6)."""
    return f"automation_v2:{run.run_id}:{gate.node_id}:{kind}:{n}"


def _remind(run: Run, gate: Gate, now: datetime) -> None:
    gate.reminder_count += 1
    gate.last_reminded_at = now
    gate.save(update_fields=["reminder_count", "last_reminded_at"])
    LifecycleEvent.objects.create(
        run=run,
        event="approval_gate_reminder_due",
        reason=f"approval gate `{gate.node_id}` is still waiting for a decision",
        metadata=_gate_metadata(
            gate,
            reminder=gate.reminder_count,
            expires_at=gate.expires_at.isoformat(),
            notification_key=_notification_key(run, gate, "reminder", gate.reminder_count),
        ),
    )
    signals.send_after_commit(signals.gate_reminded, gate_id=gate.pk, reminder=gate.reminder_count)


def _expire(run: Run, gate: Gate, now: datetime) -> bool:
    """Settle the gate as `expired` and cancel the run. False when a settling decision exists
    already (the constraint refused ours; nothing was written)."""
    policy = gate.expiry_policy or {}
    reason = f"approval gate `{gate.node_id}` expired before a decision was made"
    try:
        with transaction.atomic():
            GateDecision.objects.create(
                gate=gate,
                run=run,
                node_id=gate.node_id,
                decision=Decision.EXPIRED,
                settles=True,
                reason=reason,
                decided_by=None,
                decider_kind=SYSTEM,
                source=Surface.SYSTEM,
                reviewed_digest=gate.reviewed_digest,
                metadata={
                    "approval_request_id": gate.pk,
                    "transition_id": gate.transition_id,
                    "round": gate.round,
                    "expires_at": gate.expires_at.isoformat(),
                    "on_expiry": policy.get("on_expiry"),
                },
            )
    except IntegrityError:
        logger.info("gate %s already settled; expiry skipped", gate.pk)
        return False
    gate.status = GateStatus.EXPIRED
    gate.closed_at = now
    gate.save(update_fields=["status", "closed_at"])
    gate_events.gate_event(
        gate_events.EXPIRED,
        gate,
        run=run,
        expires_at=gate.expires_at,
        on_expiry=policy.get("on_expiry"),
    )
    from_status = state.cancel(
        run, Cause.GATE_EXPIRE, reason=reason, stop_kind=StopKind.CANCELLED, now=now
    )
    state.run_save(run)
    LifecycleEvent.objects.bulk_create(
        [
            lifecycle_event(
                run,
                "approval_gate_expired",
                reason=reason,
                stop_kind=StopKind.CANCELLED,
                **_gate_metadata(
                    gate,
                    expires_at=gate.expires_at.isoformat(),
                    on_expiry=policy.get("on_expiry"),
                    escalated_to=gate.escalated_to,
                ),
            ),
            lifecycle_event(
                run,
                "run_cancelled",
                reason=reason,
                stop_kind=StopKind.CANCELLED,
                node_id=gate.node_id,
                gate_id=gate.pk,
            ),
        ]
    )
    audit_record(
        workspace=run.workspace,
        event_type="automation.governance.gate_expired",
        actor=Actor.system(run.workspace, SWEEP_ACTOR),
        payload={
            "runID": run.run_id,
            "automationID": run.automation.automation_id,
            "nodeID": gate.node_id,
            "gateID": gate.pk,
            "round": gate.round,
            "onExpiry": policy.get("on_expiry"),
            "expiresAt": gate.expires_at.isoformat(),
            "escalatedTo": gate.escalated_to,
            "fromStatus": from_status,
            "toStatus": run.status,
        },
    )
    signals.send_after_commit(
        signals.gate_closed, gate_id=gate.pk, outcome=signals.EXPIRED, decision=None
    )
    return True


def _escalate(run: Run, gate: Gate, now: datetime) -> bool:
    """Record the `escalate_to` members as this opening's extra reviewers and extend it once.
    False (nothing written) when none of the names is a human member of the workspace: the
    caller cancels."""
    policy = gate.expiry_policy or {}
    names = [n for n in policy.get("escalate_to") or [] if isinstance(n, str)]
    usernames = list(
        Membership.objects.filter(
            workspace=run.workspace,
            user__username__in=names,
            user__kind=PrincipalKind.HUMAN,
            user__is_active=True,
        )
        .order_by("user__username")
        .values_list("user__username", flat=True)
    )
    automation = run.automation
    if not usernames or automation.deleted_at is not None:
        return False
    previous_expiry = gate.expires_at
    gate.escalated_at = now
    gate.escalated_to = usernames
    gate.expires_at = now + timedelta(seconds=int(policy.get("expires_after_s") or 0))
    gate.save(update_fields=["escalated_at", "escalated_to", "expires_at"])
    LifecycleEvent.objects.create(
        run=run,
        event="approval_gate_escalated",
        reason=f"approval gate `{gate.node_id}` expired and was escalated",
        metadata=_gate_metadata(
            gate,
            escalated_to=usernames,
            not_escalated=sorted(set(names) - set(usernames)),
            previous_expires_at=previous_expiry.isoformat(),
            expires_at=gate.expires_at.isoformat(),
            notification_key=_notification_key(run, gate, "escalated", 1),
        ),
    )
    audit_record(
        workspace=run.workspace,
        event_type="automation.governance.gate_escalated",
        actor=Actor.system(run.workspace, SWEEP_ACTOR),
        payload={
            "runID": run.run_id,
            "automationID": automation.automation_id,
            "nodeID": gate.node_id,
            "gateID": gate.pk,
            "round": gate.round,
            "escalatedTo": usernames,
            "previousExpiresAt": previous_expiry.isoformat(),
            "expiresAt": gate.expires_at.isoformat(),
        },
    )
    signals.send_after_commit(signals.gate_escalated, gate_id=gate.pk)
    return True
