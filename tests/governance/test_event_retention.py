"""Retention of the domain events (`governance.events.events_forget`, beat
`governance.forget_events`): old stamped events go in bounded batches, each workspace's head
remembers how far, and the feed answers a cursor before that 410 instead of skipping events.
The hold of webhook deliveries is tested with them (tests/channels/test_webhook_retention.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.events import (
    CursorExpired,
    event_record,
    events_after,
    events_feed_start,
    events_forget,
)
from governance.models import WorkspaceEvent, WorkspaceEventHead
from governance.tasks import forget_events

pytestmark = pytest.mark.django_db

URL = "/api/events"
DAY = timedelta(days=1)


@pytest.fixture
def record(django_capture_on_commit_callbacks):
    """`record(workspace, n, age=…)`: n events, stamped (their after-commit ran), `age` old."""

    def record(workspace, n: int, *, age: timedelta = timedelta(0)) -> list[int]:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            rows = [
                event_record(workspace_id=workspace.pk, event_type="run.paused", data={"i": i})
                for i in range(n)
            ]
        pks = [row.pk for row in rows]
        WorkspaceEvent.objects.filter(pk__in=pks).update(created_at=timezone.now() - age)
        return pks

    return record


def seqs(workspace) -> list[int]:
    return list(
        WorkspaceEvent.objects.filter(workspace=workspace)
        .order_by("seq")
        .values_list("seq", flat=True)
    )


def forgotten(workspace) -> int:
    return WorkspaceEventHead.objects.get(workspace=workspace).forgotten_seq


def test_events_past_the_retention_go_and_the_head_remembers_how_far(
    settings, workspace, other_workspace, record
):
    settings.FLOWGATE_EVENT_RETENTION_S = 30 * 86400
    record(workspace, 3, age=31 * DAY)
    record(workspace, 2, age=29 * DAY)
    record(other_workspace, 2, age=40 * DAY)
    record(other_workspace, 1)

    assert forget_events.apply().get() == 5

    assert seqs(workspace) == [4, 5] and forgotten(workspace) == 3
    assert seqs(other_workspace) == [3] and forgotten(other_workspace) == 2
    assert events_forget() == 0  # nothing left to forget; the heads stay
    assert (forgotten(workspace), forgotten(other_workspace)) == (3, 2)
    scheduled = settings.CELERY_BEAT_SCHEDULE["forget-events"]
    assert scheduled["task"] == forget_events.name and scheduled["schedule"] <= 3600


def test_an_unstamped_event_waits_for_its_stamp(workspace):
    with transaction.atomic():  # its after-commit stamp never runs (the process "died")
        event = event_record(workspace_id=workspace.pk, event_type="run.paused", data={})
    WorkspaceEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - 90 * DAY)

    assert events_forget() == 0
    assert WorkspaceEvent.objects.filter(pk=event.pk, seq__isnull=True).exists()


def test_a_small_batch_size_forgets_everything_over_several_transactions(
    settings, workspace, record
):
    settings.FLOWGATE_RETENTION_BATCH_SIZE = 2
    record(workspace, 5, age=60 * DAY)
    record(workspace, 1)

    with CaptureQueriesContext(connection) as queries:
        assert events_forget() == 5

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert seqs(workspace) == [6] and forgotten(workspace) == 5


def test_a_run_stops_after_its_batches_and_the_next_one_goes_on(workspace, record):
    record(workspace, 5, age=60 * DAY)

    assert events_forget(batch_size=2, max_batches=2) == 4
    assert seqs(workspace) == [5] and forgotten(workspace) == 4
    assert events_forget(batch_size=2, max_batches=2) == 1
    assert seqs(workspace) == [] and forgotten(workspace) == 5


@pytest.mark.parametrize("count", [3, 12])
def test_a_run_costs_the_same_queries_whatever_its_number_of_rows(
    workspace, other_workspace, record, count
):
    record(workspace, count, age=60 * DAY)
    record(other_workspace, count, age=60 * DAY)

    with CaptureQueriesContext(connection) as queries:
        assert events_forget(batch_size=100) == 2 * count

    # One batch: its transaction (2), the locking select, the heads' update, the delete.
    assert len(queries) == 5, [q["sql"] for q in queries]


# --- the feed ------------------------------------------------------------------------------------


def test_a_cursor_before_the_forgotten_events_is_410_with_where_to_go_on(viewer, record):
    record(viewer.workspace, 4, age=60 * DAY)
    record(viewer.workspace, 2)
    client = viewer.client()
    assert client.get(URL, {"cursor": "2"}).json()["count"] == 4  # before retention ran
    events_forget()

    for cursor in ("1", "3"):
        response = client.get(URL, {"cursor": cursor})
        assert response.status_code == 410, response.content
        assert response.json() == {
            "error": "Events after this cursor are past their retention and were deleted",
            "code": "EVENTS_CURSOR_EXPIRED",
            "oldest_cursor": "4",
        }
    went_on = client.get(URL, {"after": "4"}).json()
    assert [e["cursor"] for e in went_on["events"]] == ["5", "6"]


def test_retention_committing_between_the_check_and_the_read_is_still_410(workspace, record):
    record(workspace, 3, age=60 * DAY)
    record(workspace, 2)
    start = events_feed_start(workspace_id=workspace.pk, position=1)  # nothing forgotten yet
    events_forget()  # a beat run commits meanwhile

    with pytest.raises(CursorExpired) as expired:
        events_after(workspace_id=workspace.pk, after=start, limit=10)
    assert (expired.value.status, expired.value.extra) == (410, {"oldest_cursor": "3"})
    # A reader without a cursor asked for whatever is kept: no error.
    fresh = events_after(workspace_id=workspace.pk, after=0, limit=10, resume=False)
    assert [e.seq for e in fresh] == [4, 5]


@pytest.mark.parametrize("query", [{}, {"cursor": "0"}])
def test_no_cursor_yet_starts_at_the_oldest_event_kept(viewer, record, query):
    record(viewer.workspace, 3, age=60 * DAY)
    record(viewer.workspace, 1)
    events_forget()
    client = viewer.client()

    body = client.get(URL, query).json()
    assert [e["cursor"] for e in body["events"]] == ["4"] and body["next_cursor"] == "4"
    record(viewer.workspace, 3, age=60 * DAY)
    events_forget()
    assert client.get(URL, query).json() == {"events": [], "count": 0, "next_cursor": "7"}


def test_a_cursor_the_feed_never_gave_out_is_409(viewer, outsider, record):
    record(outsider.workspace, 5)
    record(viewer.workspace, 2)

    response = viewer.client().get(URL, {"cursor": "5"})  # the outsider's position
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "EVENTS_CURSOR_UNKNOWN"
    assert response.json()["last_cursor"] == "2"
    assert viewer.client().get(URL, {"cursor": "2"}).json()["count"] == 0


def test_the_schema_documents_the_cursor_errors(admin):
    schema = admin.client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/events"]["get"]
    assert {"400", "401", "403", "409", "410"} <= set(operation["responses"])
    error = operation["responses"]["410"]["content"]["application/json"]["schema"]["$ref"]
    codes = schema["components"]["schemas"][error.rsplit("/", 1)[1]]["properties"]["code"]
    assert {"EVENTS_CURSOR_EXPIRED", "EVENTS_CURSOR_UNKNOWN"} <= set(codes["enum"])
