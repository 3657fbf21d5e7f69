"""Domain events: what happened in a workspace, for the event feed and the outbound webhooks.

Any app records an event with `event_record` (or `events_record` for many at once), inside the
transaction of the change it describes: the event commits with its change or not at all, so a
change that rolls back announces nothing and a committed one is never lost. This app is the
lowest layer, so every app can call it without importing upwards.

    from governance.events import EventDraft, event_record

    event_record(workspace_id=run.workspace_id, event_type="run.paused", data={...})

Event types are dotted names (`run.paused`, `gate.decided`); `data` is a small JSON object of
ids and facts a consumer acts on (the run JSON is one GET away). Recorded today (docs/api.md,
"Events"): the run events of the run state machine (`automations.runs.state`) and the gate
events of the approval gates (`approvals`).

Two things follow every commit that recorded events:
- **In the transaction**: each registered *subscriber* (`register_event_subscriber`) gets the
  new rows, so it can write what must commit with them (`channels` turns each event into one
  webhook delivery row per subscribed endpoint).
- **After the commit** (`on_commit(robust=True)`; a failure is logged, never raised):
  `events_stamp` gives the workspace's committed events their feed positions (`seq` 1, 2, …,
  under the `WorkspaceEventHead` row lock, in a short transaction of its own), then
  `event_wakeup.notify` wakes the feed's long-polls. A process that dies between the commit and
  the stamp leaves events unstamped; the beat task `governance.stamp_events` stamps them
  (`events_stamp_overdue`).

**Retention**: beat (`governance.forget_events`, `events_forget`) deletes the events older
than `FLOWGATE_EVENT_RETENTION_S`, except those a higher app still needs: an app registers an
*event hold* (`register_event_hold`; `channels` keeps every event a webhook delivery still
refers to), so pruning never breaks a delivery. Each workspace head remembers the highest
position deleted (`forgotten_seq`); a feed cursor below it is answered 410
`EVENTS_CURSOR_EXPIRED` (`events_feed_start`) instead of silently skipping what is gone.

Why stamp after the commit instead of numbering at insert: two transactions insert events 10
and 11, and 11 commits first; a reader that returned 11 and moved its cursor past it would never
see 10. Stamping numbers only committed events, and a stamp commits before the next one is
taken (the head lock), so a reader can never see seq n+1 before n. Holding a workspace-wide lock
from the event's insert to its commit instead would serialise every run change of a workspace.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Subquery
from django.db.models.functions import Greatest
from django.utils import timezone

from governance import event_wakeup
from governance.errors import Conflict, Gone
from governance.models import WorkspaceEvent, WorkspaceEventHead
from governance.retention import MAX_BATCHES, forget_in_batches

logger = logging.getLogger(__name__)

# Events numbered by one stamping transaction; a larger backlog takes several.
STAMP_BATCH = 1000
# Unstamped events older than this were missed by their after-commit stamp (the sweep's cue).
STAMP_GRACE = timedelta(seconds=10)


class EventOutsideTransaction(RuntimeError):
    """Raised when an event is recorded without an open transaction to join."""


class CursorExpired(Gone):
    """A feed cursor after which retention deleted events (see `events_feed_start`)."""

    code = "EVENTS_CURSOR_EXPIRED"
    message = "Events after this cursor are past their retention and were deleted"


@dataclass(frozen=True)
class EventDraft:
    """An event to record: its workspace (id), type and data."""

    workspace_id: int
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[list[WorkspaceEvent]], None]
_subscribers: list[Subscriber] = []
# An event hold: `hold()` is a condition on `WorkspaceEvent` (an `Exists(...)` with an
# `OuterRef("pk")`), true for the events retention must keep.
EventHold = Callable[[], Exists]
_holds: list[EventHold] = []
_declared_types: dict[str, str] = {}


def declare_event_types(types: dict[str, str]) -> None:
    """Declare event types (name → what it means) an app records, in its `AppConfig.ready()`:
    webhook endpoints may subscribe only to declared types, and the docs list them."""
    _declared_types.update(types)


def declared_event_types() -> dict[str, str]:
    return dict(sorted(_declared_types.items()))


def register_event_subscriber(subscriber: Subscriber) -> None:
    """Have `subscriber(events)` called, inside the recording transaction, with every batch of
    events recorded. A higher app registers in its `AppConfig.ready()`; registering the same
    function again changes nothing."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def register_event_hold(hold: EventHold) -> None:
    """Have retention keep the events for which `hold()` is true (rows of a higher app that
    still refer to them). Registered in the app's `AppConfig.ready()`; idempotent."""
    if hold not in _holds:
        _holds.append(hold)


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def event_record(*, workspace_id: int, event_type: str, data: dict[str, Any]) -> WorkspaceEvent:
    """Record one event in the caller's transaction (see the module docstring)."""
    return events_record([EventDraft(workspace_id, event_type, data)])[0]


def events_record(drafts: Iterable[EventDraft]) -> list[WorkspaceEvent]:
    """Record events in the caller's transaction with one INSERT, in the given order; tell the
    subscribers, and stamp and announce them after the commit."""
    if not connection.in_atomic_block:
        raise EventOutsideTransaction("events must be recorded in the transaction of their change")
    now = timezone.now()
    rows = [
        WorkspaceEvent(
            workspace_id=draft.workspace_id,
            event_id=new_event_id(),
            event_type=draft.event_type,
            data=json.loads(json.dumps(draft.data, cls=DjangoJSONEncoder)),
            created_at=now,
        )
        for draft in drafts
    ]
    if not rows:
        return []
    WorkspaceEvent.objects.bulk_create(rows)
    for subscriber in _subscribers:
        subscriber(rows)
    workspace_ids = sorted({row.workspace_id for row in rows})
    transaction.on_commit(partial(events_committed, workspace_ids), robust=True)
    return rows


def events_committed(workspace_ids: list[int]) -> None:
    """After a commit that recorded events: stamp them, then wake the feed's long-polls. Logs
    instead of raising (the sweep stamps what this missed)."""
    for workspace_id in workspace_ids:
        try:
            events_stamp(workspace_id)
        except Exception:
            logger.exception(
                "could not stamp the events of workspace %s; the sweep will", workspace_id
            )
            continue
        event_wakeup.notify(workspace_id)


# Numbers up to `STAMP_BATCH` unstamped events after the head's seq in insert (id) order, in one
# statement whatever their number (an automation pause records thousands at once).
_STAMP = (
    "UPDATE governance_workspaceevent SET seq = numbered.seq "
    "FROM (SELECT id, %s + ROW_NUMBER() OVER (ORDER BY id) AS seq "
    "FROM governance_workspaceevent WHERE workspace_id = %s AND seq IS NULL "
    "ORDER BY id LIMIT %s) AS numbered "
    "WHERE governance_workspaceevent.id = numbered.id"
)


def events_stamp(workspace_id: int) -> int:
    """Give the workspace's committed, unstamped events their feed positions, in insert order;
    returns how many were stamped. Its own short transaction; the head row's lock makes stamps
    commit in seq order (see the module docstring)."""
    with transaction.atomic():
        head = _locked_head(workspace_id)
        with connection.cursor() as cursor:
            cursor.execute(_STAMP, [head.seq, workspace_id, STAMP_BATCH])
            stamped = cursor.rowcount
        if not stamped:
            return 0
        head.seq += stamped
        head.save(update_fields=["seq"])
    if stamped == STAMP_BATCH:
        return stamped + events_stamp(workspace_id)
    return stamped


def _locked_head(workspace_id: int) -> WorkspaceEventHead:
    """The workspace's head row, locked; created on first use (one creator wins, the others
    then wait on its lock)."""
    heads = WorkspaceEventHead.objects.select_for_update()
    head = heads.filter(workspace_id=workspace_id).first()
    if head is None:
        WorkspaceEventHead.objects.bulk_create(
            [WorkspaceEventHead(workspace_id=workspace_id)], ignore_conflicts=True
        )
        head = heads.get(workspace_id=workspace_id)
    return head


def events_stamp_overdue(*, now=None) -> int:
    """Beat: stamp (and announce) the events whose after-commit stamp never ran (the process
    died between the commit and the stamp). Returns how many were stamped."""
    now = now or timezone.now()
    workspaces = (
        WorkspaceEvent.objects.filter(seq__isnull=True)
        .values("workspace_id")
        .annotate(oldest=Min("created_at"))
        .filter(oldest__lt=now - STAMP_GRACE)
        .values_list("workspace_id", flat=True)
    )
    stamped = 0
    for workspace_id in workspaces:
        count = events_stamp(workspace_id)
        if count:
            stamped += count
            event_wakeup.notify(workspace_id)
    return stamped


def event_message(event: WorkspaceEvent) -> dict[str, Any]:
    """What a consumer receives for an event, in a webhook body and the feed alike."""
    return {
        "type": event.event_type,
        "timestamp": event.created_at.astimezone(UTC).isoformat(),
        "data": event.data,
    }


def events_after(
    *, workspace_id: int, after: int, limit: int, resume: bool = True
) -> list[WorkspaceEvent]:
    """Up to `limit` stamped events of the workspace after feed position `after`, in order.

    With `resume` (the reader goes on from a cursor it was given), 410 `EVENTS_CURSOR_EXPIRED`
    when retention deleted events after `after`. The head's `forgotten_seq` is read in the same
    statement as the events (one snapshot), so a retention run committing between the check of
    `events_feed_start` and this read cannot make the feed skip events silently."""
    forgotten = WorkspaceEventHead.objects.filter(workspace_id=workspace_id).values("forgotten_seq")
    rows = list(
        WorkspaceEvent.objects.filter(workspace_id=workspace_id, seq__gt=after)
        .annotate(forgotten=Subquery(forgotten))
        .order_by("seq")[:limit]
    )
    if resume and rows and rows[0].forgotten > after:
        raise CursorExpired(oldest_cursor=str(rows[0].forgotten))
    return rows


def events_feed_start(*, workspace_id: int, position: int) -> int:
    """Where a feed read after `position` starts, checked against what the feed still has:
    0 (no cursor yet) starts at the oldest kept event; a cursor below the head's
    `forgotten_seq` is 410 `EVENTS_CURSOR_EXPIRED` (events after it may have been deleted, and
    skipping them silently would lose them for the consumer), with `oldest_cursor`, where to go
    on from once the loss is accepted; a cursor past the last stamped position was never given
    out by this workspace's feed (another workspace's, or from before a database restore): 409
    `EVENTS_CURSOR_UNKNOWN`, with `last_cursor`."""
    seq, forgotten = (
        WorkspaceEventHead.objects.filter(workspace_id=workspace_id)
        .values_list("seq", "forgotten_seq")
        .first()
    ) or (0, 0)
    if position > seq:
        raise Conflict(
            "This cursor was never given out by this workspace's event feed",
            code="EVENTS_CURSOR_UNKNOWN",
            last_cursor=str(seq),
        )
    if position == 0:
        return forgotten
    if position < forgotten:
        raise CursorExpired(oldest_cursor=str(forgotten))
    return position


def _events_delete(pks: list[int]) -> None:
    """Forget one batch: raise each workspace's `forgotten_seq` to the highest position in the
    batch, then delete the batch. A plain DELETE, no ORM cascade: the holds keep every row that
    still refers to an event, and should one slip through, the deferred foreign key refuses the
    batch at commit rather than deleting a delivery with its event."""
    top = (
        WorkspaceEvent.objects.filter(pk__in=pks, workspace_id=OuterRef("workspace_id"))
        .values("workspace_id")
        .annotate(top=Max("seq"))
        .values("top")
    )
    WorkspaceEventHead.objects.filter(
        workspace_id__in=WorkspaceEvent.objects.filter(pk__in=pks).values("workspace_id")
    ).update(forgotten_seq=Greatest("forgotten_seq", Subquery(top)))
    table = connection.ops.quote_name(WorkspaceEvent._meta.db_table)
    placeholders = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", pks)


def events_forget(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int = MAX_BATCHES
) -> int:
    """Beat: delete the stamped events older than `FLOWGATE_EVENT_RETENTION_S` that no hold
    keeps, in batches (`governance.retention`); returns how many. Unstamped ones wait for
    their stamp (they are not in the feed yet)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FLOWGATE_EVENT_RETENTION_S)
    candidates = WorkspaceEvent.objects.filter(created_at__lt=cutoff, seq__isnull=False)
    for hold in _holds:
        candidates = candidates.filter(~hold())
    return forget_in_batches(
        candidates, _events_delete, batch_size=batch_size, max_batches=max_batches
    )
