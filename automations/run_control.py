"""Operator actions on runs. Pause is here first because the engine's fencing is tested with it;
the other actions (resume, cancel, recover, repair, task resets) join it with the run-control
issue, over one transition table.
"""

from __future__ import annotations

from django.db import transaction

from automations.lifecycle import lifecycle_record
from automations.models import NodeState, Run, RunNode, RunStatus
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict
from governance.policy import Action, authorize

PAUSABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


def run_pause(*, actor: Actor, run: Run, reason: str | None = None) -> Run:
    """`queued`/`running` → `paused`: in-flight attempts are fenced out and their tasks revoked.

    Running nodes go back to pending with their token cleared, so a result that arrives later is
    discarded by `engine.node_result_accept`; the attempt still counts.
    """
    from automations import tasks

    authorize(actor, Action.OPERATE, run.automation)
    reason = (reason or "").strip() or "paused by operator"
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if locked.status not in PAUSABLE:
            raise Conflict(
                "Run is not pausable", code="AUTOMATION_V2_RUN_NOT_PAUSABLE", runID=locked.run_id
            )
        in_flight = list(
            RunNode.objects.select_for_update().filter(run=locked, state=NodeState.RUNNING)
        )
        task_ids = [n.task_id for n in in_flight if n.task_id]
        RunNode.objects.filter(pk__in=[n.pk for n in in_flight]).update(
            state=NodeState.PENDING, attempt_token=None, task_id=""
        )
        locked.status = RunStatus.PAUSED
        locked.pause_reason = reason
        locked.lease_owner = ""
        locked.lease_expires_at = None
        locked.version += 1
        locked.save(
            update_fields=[
                "status",
                "pause_reason",
                "lease_owner",
                "lease_expires_at",
                "version",
                "updated_at",
            ]
        )
        lifecycle_record(locked, "run_pause_requested", reason=reason)
        lifecycle_record(
            locked, "run_paused", reason=reason, fenced_nodes=[n.node_id for n in in_flight]
        )
        audit_record(
            workspace=actor.workspace,
            event_type="automation.run.paused",
            actor=actor,
            payload={
                "runID": locked.run_id,
                "automationID": run.automation.automation_id,
                "reason": reason,
            },
        )
        transaction.on_commit(lambda: tasks.revoke(task_ids))
    return locked
