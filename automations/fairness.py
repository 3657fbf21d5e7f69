"""Fairness between workspaces: a cap on each workspace's admitted node attempts.

At most `FLOWGATE_WORKSPACE_MAX_RUNNING_NODES` node attempts of one workspace are *admitted*
(published to the broker, or executing) at once. The engine starts nodes as before (state
`running`, a fresh attempt token, `admitted_at` empty); an attempt beyond the cap is *held*: it
stays in the database, never reaches the broker, and is admitted, oldest first, when one of the
workspace's attempts ends.

Why this interleaves workspaces: the broker's queue is first in, first out, so without a cap a
workspace that starts 3,000 nodes puts 3,000 messages ahead of every other workspace's next
node. With it, each workspace has at most `cap` node messages queued or executing, and of
those at most `FLOWGATE_WORKSPACE_BROKER_BACKLOG` (1) waiting in the broker (the next one is
admitted when a worker claims one), so another workspace's run waits behind at most that
backlog of each busy workspace, whatever the size of their floods: the broker's queue holds
the workspaces' next attempts in turn. A flooding workspace's own held attempts wait for its
own slots only. Within a workspace attempts are admitted in the order they were created (node
row order), so no run of it starves either. A worker that would go on executing a run's next
node itself (the engine's inline continuation, up to `engine.INLINE_BUDGET_S`) does so only
while no other workspace has work waiting for a worker process; otherwise it sends the node
through admission like any other, so the process goes to the work that waited.

Why the slot is a column of the node row (not a Redis token bucket or a counter row): the node
rows already say which attempts are live, and every way an attempt ends (result accepted or
discarded, paused, cancelled, repaired, reaped) moves its row out of `running` in the
transaction that ends it. A slot is therefore freed exactly when the attempt ends, with no
count to keep in step and nothing left behind when a worker process dies; it works the same on
SQLite (the embedded default, which has no Redis) as on PostgreSQL. One caveat follows from
that: a fenced attempt whose node code is still executing (a pause or cancel while it runs; its
result will be discarded) no longer counts, so for the length of that node a workspace can have
up to `cap` + the attempts just fenced executing.

Several worker processes: admission for a workspace runs under a transaction-level PostgreSQL
advisory lock keyed by the workspace, so two processes never hand out the same free slot (on
SQLite every write transaction is immediate, one writer at a time, which gives the same). The
held rows are selected `FOR UPDATE SKIP LOCKED`: a row that a run's own transaction has locked
(an accept, a cancel) is skipped, never waited for, and nothing else is waited for while the
workspace lock is held. So the lock order run → nodes → workspace admission lock (the engine
takes it last, to claim a slot for a node it executes inline) cannot deadlock; a skipped row's
run is admitted again after its own transaction commits.

When capacity frees: every transaction that starts or ends attempts (the engine's advance and
accept, pause, cancel, the stale reaper) admits its workspace's held attempts right after it
commits (`admit_after_commit`), and so does a worker that claims an admitted attempt; the beat
sweep also admits every workspace with held attempts (`admit_waiting`), as a backstop for a
process that died between its commit and the admission. A message the broker lost keeps its
slot until the stale sweep sends its attempt again (`FLOWGATE_STALE_AFTER_S` after the run's
last sign of life).
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from automations import scheduling
from automations.models import NodeState, Run, RunNode, RunStatus

logger = logging.getLogger(__name__)

# First key of the two-key advisory lock (`pg_advisory_xact_lock(int, int)`); the second is
# the workspace id. "Flow" in ASCII, so the lock is recognisable in `pg_locks`.
ADMISSION_LOCK = 0x466C6F77

LIVE = Q(state=NodeState.RUNNING, attempt_token__isnull=False)
HELD = LIVE & Q(admitted_at__isnull=True)
ADMITTED = LIVE & Q(admitted_at__isnull=False)
# What publishing an admitted attempt needs (`scheduling.dispatch_now`), after the row's pk.
DISPATCH_COLUMNS = ("pk", "run__run_id", "node_id", "attempt_token", "task_id", "time_limit_s")


def cap() -> int:
    return max(1, settings.FLOWGATE_WORKSPACE_MAX_RUNNING_NODES)


def backlog() -> int:
    return max(1, settings.FLOWGATE_WORKSPACE_BROKER_BACKLOG)


def _lock(workspace_id: int) -> None:
    """Serialise the admissions of one workspace until this transaction ends (PostgreSQL;
    SQLite transactions are immediate, so already serialised)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADMISSION_LOCK, workspace_id])


def _admitted(workspace_id: int) -> int:
    return RunNode.objects.filter(ADMITTED, run__workspace_id=workspace_id).count()


def _free(workspace_id: int) -> int:
    """How many more attempts the workspace may have admitted now: within its cap, and with
    at most `backlog()` of them waiting in the broker (admitted, not yet claimed)."""
    counts = RunNode.objects.filter(ADMITTED, run__workspace_id=workspace_id).aggregate(
        admitted=Count("pk"), waiting=Count("pk", filter=Q(started_at__isnull=True))
    )
    return min(cap() - counts["admitted"], backlog() - counts["waiting"])


def inline_slot_claim(workspace_id: int, *, continuing: bool) -> bool:
    """Whether the worker holding a run's lock may execute the run's next node itself instead
    of publishing it, taking a slot of the workspace.

    A task's first node (`continuing` false: the advance task of a run) may, as the node task
    it replaces would have had its turn then. Continuing after a node (the engine's inline
    continuation) only while no other workspace has work waiting for a worker process (a
    queued run, or an admitted attempt nobody picked up yet): a chain of one workspace would
    otherwise keep the process from them for the whole inline budget. And only into a free
    slot: the admission lock is held until the caller's transaction ends, so the count stays
    true."""
    if continuing and _others_waiting(workspace_id):
        return False
    _lock(workspace_id)
    return _admitted(workspace_id) < cap()


def _others_waiting(workspace_id: int) -> bool:
    queued = Run.objects.filter(status=RunStatus.QUEUED).exclude(workspace_id=workspace_id)
    unclaimed = RunNode.objects.filter(ADMITTED, started_at__isnull=True).exclude(
        run__workspace_id=workspace_id
    )
    return queued.exists() or unclaimed.exists()


def admit(workspace_id: int) -> int:
    """Admit the workspace's oldest held attempts into its free slots and publish them after
    commit. Returns how many were admitted."""
    if not RunNode.objects.filter(HELD, run__workspace_id=workspace_id).exists():
        return 0  # the common case, without a lock: a hold committed later admits itself
    with transaction.atomic():
        _lock(workspace_id)
        free = _free(workspace_id)
        if free <= 0:
            return 0
        held = list(
            RunNode.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(HELD, run__workspace_id=workspace_id)
            .order_by("pk")
            .values_list(*DISPATCH_COLUMNS)[:free]
        )
        if not held:
            return 0
        RunNode.objects.filter(pk__in=[row[0] for row in held]).update(admitted_at=timezone.now())
        scheduling.dispatch_after_commit(
            (run_id, node_id, str(token), task_id, time_limit)
            for _, run_id, node_id, token, task_id, time_limit in held
        )
    return len(held)


def admit_logged(workspace_id: int) -> None:
    """`admit`, logging instead of raising (a worker about to execute a node it claimed)."""
    try:
        admit(workspace_id)
    except Exception:  # the beat sweep admits what this missed
        logger.exception("admitting held node attempts of workspace %s failed", workspace_id)


def admit_after_commit(workspace_id: int) -> None:
    """`admit` once this transaction commits (robust: a failure is logged, the sweep retries)."""
    transaction.on_commit(partial(admit_logged, workspace_id), robust=True)


def admit_waiting() -> int:
    """Admit held attempts in every workspace that has some (the beat sweep's backstop)."""
    workspace_ids = (
        RunNode.objects.filter(HELD).values_list("run__workspace_id", flat=True).distinct()
    )
    admitted = 0
    for workspace_id in sorted(set(workspace_ids)):
        try:
            admitted += admit(workspace_id)
        except Exception:  # one workspace's failure must not stop the others
            logger.exception("admitting held node attempts of workspace %s failed", workspace_id)
    return admitted
