"""The event feed: `GET /api/events?cursor=<position>&limit=&wait=<seconds>`.

The workspace's domain events (`governance.events`) in feed order, the same events the webhooks
send. Every member may read it (`WorkspaceAction.READ_EVENTS`); there is no parameter naming
another workspace, so another tenant's events cannot even be addressed.

A feed has no last page: `next_cursor` is always where to continue (the position of the last
event returned, or the one given when none was), so a client loops on it. `after` is the name
the issue gave the position; `cursor`, the name of every other list, is accepted too.

Retention deletes old events (`FLOWGATE_EVENT_RETENTION_S`): a cursor older than what the feed
still has is 410 `EVENTS_CURSOR_EXPIRED`, one the feed never gave out 409
`EVENTS_CURSOR_UNKNOWN` (`governance.events.events_feed_start`), never a silent skip.

Long-polling: with `wait` (at most `MAX_WAIT_S`) and nothing after the position, the request
waits until an event is stamped or the time is up (`governance.event_wakeup`), holding no
transaction and, outside a test's transaction, no database connection while it waits; it then
answers whatever is there, possibly nothing.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from governance import event_wakeup
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import list_json
from governance.api.schema import error_codes, extra_errors
from governance.events import event_message, events_after, events_feed_start
from governance.models import WorkspaceEvent
from governance.policy import WorkspaceAction, authorize_workspace

MAX_WAIT_S = 30
MAX_LIMIT = 500
POSITION = r"^(0|[1-9][0-9]{0,17})\Z"


class EventFeedQuerySerializer(serializers.Serializer):
    cursor = serializers.RegexField(
        POSITION,
        required=False,
        help_text="`next_cursor` of the previous answer; absent or 0: from the oldest event "
        "still kept.",
    )
    after = serializers.RegexField(POSITION, required=False, help_text="Alias of `cursor`.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)
    wait = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_WAIT_S,
        default=0,
        help_text="Seconds to wait for an event when there is none after the position.",
    )

    def validate(self, attrs):
        cursor, after = attrs.pop("cursor", None), attrs.pop("after", None)
        if cursor is not None and after is not None and cursor != after:
            raise serializers.ValidationError({"after": ["Differs from cursor."]})
        attrs["position"] = int(cursor or after or 0)
        return attrs


class EventSerializer(serializers.Serializer):
    event_id = serializers.CharField(help_text="Also the `webhook-id` of its webhooks.")
    cursor = serializers.CharField(help_text="The event's position in the feed.")
    type = serializers.CharField(help_text="run.started, gate.decided, … (docs/api.md, Events)")
    timestamp = serializers.DateTimeField()
    data = serializers.DictField()


class EventFeedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    count = serializers.IntegerField(help_text="Number of events in this response.")
    next_cursor = serializers.CharField(
        help_text="Where to continue: never null (a feed has no last page)."
    )


def event_json(event: WorkspaceEvent) -> dict[str, Any]:
    return {"event_id": event.event_id, "cursor": str(event.seq), **event_message(event)}


class EventFeedView(WorkspaceAPIView):
    """The workspace's domain events in order after a cursor (the same events the webhooks
    send); with `wait`, the request waits up to that many seconds for the next event."""

    @extend_schema(
        parameters=[EventFeedQuerySerializer],
        responses=EventFeedSerializer,
        operation_id="events_list",
        summary="The workspace's events in order, long-polling with wait",
        tags=["events"],
        extensions={
            **error_codes("EVENTS_CURSOR_EXPIRED", "EVENTS_CURSOR_UNKNOWN"),
            **extra_errors(
                {
                    "409": "A cursor this feed never gave out (`EVENTS_CURSOR_UNKNOWN`)",
                    "410": "Events after the cursor are past their retention "
                    "(`EVENTS_CURSOR_EXPIRED`, with `oldest_cursor`)",
                }
            ),
        },
    )
    def get(self, request):
        authorize_workspace(request.actor, WorkspaceAction.READ_EVENTS, audit=False)
        query = parse_input(EventFeedQuerySerializer, request.query_params)
        workspace_id = request.actor.workspace.pk
        position = events_feed_start(workspace_id=workspace_id, position=query["position"])

        def read() -> list[WorkspaceEvent]:
            return events_after(
                workspace_id=workspace_id,
                after=position,
                limit=query["limit"],
                resume=query["position"] > 0,
            )

        if query["wait"]:
            rows = _wait_for_events(workspace_id, read, seconds=query["wait"])
        else:
            rows = read()
        items = [event_json(row) for row in rows]
        return Response(list_json("events", items, str(rows[-1].seq if rows else position)))


def _wait_for_events(workspace_id: int, read, *, seconds: float) -> list[WorkspaceEvent]:
    """Read; while nothing is there and time is left, sleep until woken and read again."""
    deadline = time.monotonic() + seconds
    with event_wakeup.waiter(workspace_id) as waiter:  # subscribed before the first read
        rows = read()
        while not rows and (left := deadline - time.monotonic()) > 0:
            if not connection.in_atomic_block:
                connection.close()  # a waiting client holds no database connection
            waiter.wait(left)
            rows = read()
    return rows
