"""The one home of everything the engine hands to the broker: advance a run, dispatch a node
attempt, revoke fenced attempts.

Every `*_after_commit` function registers its publish with `transaction.on_commit(...,
robust=True)`, so it runs only once the change it follows is committed and a broker that is
down or silent never turns a committed change into an error for its caller (nor skips the other
callbacks of that commit). `publish` itself also logs instead of raising, for the callers that
are not inside a transaction (beat sweeps). What a lost message would have done is recovered by
the beat sweeps (`automations.runs.sweeps`): a queued run nobody advanced is re-sent after
`FLOWGATE_SWEEP_INTERVAL_S`, a dispatched attempt nobody claimed is re-sent under a fresh token,
and a fenced attempt that was not revoked is discarded when it reports.

Tasks are published by name (the names are declared here and used by `automations.tasks`), so
the engine, the run state machine and the services never import the task module that imports
them back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from celery import current_app
from celery.canvas import chunks, signature
from django.db import transaction

logger = logging.getLogger(__name__)

ADVANCE_RUN = "automations.advance_run"
EXECUTE_NODE = "automations.execute_node"
SWEEP_RUNS = "automations.sweep_runs"
FIRE_SCHEDULES = "automations.fire_schedules"
# Runs advanced by one message when many are queued at once (automation resume).
ADVANCE_CHUNK = 100


def publish(task_name: str, args: list[Any], **options: Any) -> bool:
    """Send one task message; log and return False when the broker cannot take it."""
    try:
        current_app.send_task(task_name, args=args, **options)
    except Exception:
        logger.exception("could not publish %s%s; a beat sweep re-sends it", task_name, args)
        return False
    return True


def advance_now(run_id: str, *, countdown: float = 0) -> bool:
    """Publish the advance of `run_id` now (callers outside a transaction: the sweeps)."""
    return publish(ADVANCE_RUN, [run_id], countdown=countdown or None)


def advance_after_commit(run_id: str, *, countdown: float = 0) -> None:
    """Advance `run_id` once this transaction commits (after `countdown` seconds)."""
    transaction.on_commit(partial(advance_now, run_id, countdown=countdown), robust=True)


def advance_many_now(run_ids: list[str]) -> None:
    """Advance many runs in messages of `ADVANCE_CHUNK` runs (Celery's `chunks`), so queueing
    10,000 runs publishes 100 messages, not 10,000. A chunk advances its runs one after the
    other in one worker; a run a lost or crashed chunk misses stays `queued` and is picked up
    by the idle-queued sweep."""
    try:
        chunks(signature(ADVANCE_RUN), [(r,) for r in run_ids], ADVANCE_CHUNK).apply_async()
    except Exception:
        logger.exception("could not publish the advance of %d runs", len(run_ids))


def advance_many_after_commit(run_ids: list[str]) -> None:
    """`advance_many_now` once this transaction commits."""
    if run_ids:
        transaction.on_commit(partial(advance_many_now, run_ids), robust=True)


def dispatch_now(dispatch: tuple) -> bool:
    """Publish one node attempt `(run_id, node_id, token, task_id, timeout_s)` under the task
    id stored on the node (so it can be revoked); a node `timeout_s` becomes the task's soft
    time limit."""
    run_id, node_id, token, task_id, timeout_s = dispatch
    options: dict[str, Any] = {"task_id": task_id}
    if timeout_s:
        options.update(soft_time_limit=timeout_s, time_limit=timeout_s + 30)
    return publish(EXECUTE_NODE, [run_id, node_id, token], **options)


def dispatch_after_commit(dispatches: Iterable[tuple]) -> None:
    """Publish node attempts after commit (see `dispatch_now`), each on its own so one failing
    publish does not lose the others."""
    for dispatch in dispatches:
        transaction.on_commit(partial(dispatch_now, dispatch), robust=True)


def revoke_now(task_ids: list[str]) -> None:
    """Revoke fenced node tasks. Best effort: a task already running, or one the revoke did not
    reach, is fenced out anyway when it reports (its attempt token is gone)."""
    try:
        current_app.control.revoke(task_ids)
    except Exception:
        logger.exception("could not revoke %d fenced node tasks", len(task_ids))


def revoke_after_commit(task_ids: list[str]) -> None:
    """`revoke_now` once this transaction commits."""
    if task_ids:
        transaction.on_commit(partial(revoke_now, task_ids), robust=True)
