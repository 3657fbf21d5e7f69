"""Periodic sweeps (Celery beat): reap stale running runs, re-kick queued runs.

A worker killed in the middle of a node stops heartbeating; after `FLOWGATE_STALE_AFTER_S` the
run is paused (`stale_no_provider_activity`, `stop_kind = stale_reaped`) so an operator can
recover it, or failed when the stuck node has no attempts left. It never stays `running`.
A run whose work never started (messages waiting in a busy broker, or lost) is not paused: its
unclaimed attempts are sent again under fresh tokens.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automations import fairness, scheduling
from automations.lifecycle import lifecycle_record
from automations.models import NodeState, Run, RunNode, RunStatus, StopKind, SweepMark
from automations.run_spec import NodeSpec
from automations.runs import state
from automations.runs.transitions import Cause
from governance.actors import Actor
from governance.audit import audit_record

logger = logging.getLogger(__name__)

STALE_REASON = "stale_no_provider_activity"
BATCH = 200


def sweep_stale_runs() -> list[str]:
    """Reap every running run whose heartbeat is older than the stale threshold."""
    cutoff = timezone.now() - timedelta(seconds=settings.FLOWGATE_STALE_AFTER_S)
    stale = list(
        Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
        .order_by("heartbeat_at")
        .values_list("run_id", flat=True)[:BATCH]
    )
    reaped = []
    for run_id in stale:
        try:
            if run_reap_stale(run_id, cutoff=cutoff):
                reaped.append(run_id)
        except Exception:  # one broken run must not stop the sweep for every other run
            logger.exception("reaping stale run %s failed", run_id)
    return reaped


def run_reap_stale(run_id: str, *, cutoff) -> bool:
    """Pause (or fail) one stale run; re-checked under the run lock. Returns whether it acted."""
    now = timezone.now()
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("workspace__organization")
            .defer("automation_snapshot")
            .get(run_id=run_id)
        )
        if run.status != RunStatus.RUNNING or (run.heartbeat_at and run.heartbeat_at >= cutoff):
            return False
        stuck = list(RunNode.objects.select_for_update().filter(run=run, state=NodeState.RUNNING))
        if all(node.started_at is None for node in stuck):
            # Nothing ever began executing: the messages wait in a busy broker or were lost
            # (or, with no node running, a wake-up was). That is not a stalled provider, so send
            # the work again rather than pausing a healthy run.
            _resend(run, stuck, now)
            return True
        task_ids = [n.task_id for n in stuck if n.task_id]
        exhausted = []
        for node in stuck:
            out_of_attempts = node.attempts >= NodeSpec(node.spec).max_attempts
            node.output = {
                "status": "failed" if out_of_attempts else "needs_repair",
                "failure_kind": STALE_REASON,
                "reason": "no activity from the node's execution before the stale threshold",
                "failed_at": now.isoformat(),
            }
            node.state = NodeState.FAILED if out_of_attempts else NodeState.PENDING
            node.attempt_token = None
            node.task_id = ""
            node.finished_at = now
            if out_of_attempts:
                exhausted.append(node.node_id)
        RunNode.objects.bulk_update(
            stuck, ["output", "state", "attempt_token", "task_id", "finished_at", "updated_at"]
        )
        failed_node = exhausted[0] if exhausted else (stuck[0].node_id if stuck else None)
        run.last_failure = {
            "node_id": failed_node,
            "reason": STALE_REASON,
            "failed_at": now.isoformat(),
            "failure_kind": STALE_REASON,
        }
        if exhausted:
            state.run_move(run, Cause.STALE_FAIL, now=now)
            run.detail = f"stale run failed: node(s) {', '.join(exhausted)} have no attempts left"
            event = "run_failed_stale_no_provider_activity"
        else:
            state.run_move(run, Cause.STALE_PAUSE, now=now)
            run.pause_reason = STALE_REASON
            run.detail = "paused: no provider activity before the stale threshold"
            event = "run_paused_stale_no_provider_activity"
        run.stop_kind = StopKind.STALE_REAPED
        state.run_save(run)
        lifecycle_record(
            run,
            event,
            reason=STALE_REASON,
            stop_kind=StopKind.STALE_REAPED,
            nodes=[n.node_id for n in stuck],
        )
        audit_record(
            workspace=run.workspace,
            event_type="automation.run.stale_reaped",
            actor=Actor.system(run.workspace, "stale_sweep"),
            payload={
                "runID": run.run_id,
                "status": run.status,
                "nodes": [n.node_id for n in stuck],
            },
        )
        scheduling.revoke_after_commit(task_ids)
        fairness.admit_after_commit(run.workspace_id)
    logger.warning("reaped stale run %s → %s", run_id, run.status)
    return True


def _resend(run: Run, unclaimed: list[RunNode], now) -> None:
    """Re-dispatch never-claimed attempts under fresh tokens (the old messages, if they ever
    arrive, no longer match and are skipped), or re-advance a run with nothing running.

    They go back to the workspace's admission (`automations.fairness`) in their old place
    (node row order): a message lost in the broker gets its slot again, an attempt still held
    by the cap stays held."""
    for node in unclaimed:
        node.attempt_token = uuid.uuid4()
        node.task_id = str(uuid.uuid4())
        node.admitted_at = None
    RunNode.objects.bulk_update(
        unclaimed, ["attempt_token", "task_id", "admitted_at", "updated_at"]
    )
    run.heartbeat_at = now
    run.save(update_fields=["heartbeat_at", "updated_at"])
    lifecycle_record(
        run,
        "run_work_resent",
        reason="no execution started before the stale threshold",
        nodes=[n.node_id for n in unclaimed],
    )
    if unclaimed:
        fairness.admit_after_commit(run.workspace_id)
    else:
        scheduling.advance_after_commit(run.run_id)


def requeue_idle_queued_runs() -> int:
    """Re-send the advance message of queued runs nobody picked up (e.g. a broker restart, or
    a broker that was down when the change that queued them committed)."""
    cutoff = timezone.now() - timedelta(seconds=settings.FLOWGATE_SWEEP_INTERVAL_S)
    run_ids = list(
        Run.objects.filter(status=RunStatus.QUEUED, updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("run_id", flat=True)[:BATCH]
    )
    for run_id in run_ids:
        scheduling.advance_now(run_id)
    return len(run_ids)


def sweep_mark_completed(name: str) -> None:
    """Record that the beat sweep `name` just completed (read by /readyz and /metrics)."""
    SweepMark.objects.update_or_create(name=name, defaults={"completed_at": timezone.now()})


def last_sweep_completed_at(name: str):
    """When the beat sweep `name` last completed, or None if it never has."""
    return SweepMark.objects.filter(name=name).values_list("completed_at", flat=True).first()
