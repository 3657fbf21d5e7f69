"""`GET /api/events` (issue 17 item 2): the workspace's events in order with a cursor, and
long-polling that a decision made in another thread ends."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from approvals.decisions import gate_decide
from governance.events import event_record
from tests.factories import actor_for, awaiting, basic

URL = "/api/events"


def record(workspace_id: int, n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            event_record(workspace_id=workspace_id, event_type="run.paused", data={"i": i})


@pytest.mark.django_db(transaction=True)
def test_the_feed_pages_in_order_and_always_says_where_to_continue(viewer, outsider):
    record(viewer.workspace.pk, 5)
    record(outsider.workspace.pk, 2)
    client = viewer.client()
    first = client.get(URL, {"limit": 3}).json()
    assert [e["data"]["i"] for e in first["events"]] == [0, 1, 2]
    assert first["count"] == 3 and first["next_cursor"] == first["events"][-1]["cursor"] == "3"
    assert set(first["events"][0]) == {"event_id", "cursor", "type", "timestamp", "data"}
    rest = client.get(URL, {"cursor": first["next_cursor"]}).json()
    assert [e["data"]["i"] for e in rest["events"]] == [3, 4]
    empty = client.get(URL, {"after": rest["next_cursor"]}).json()
    assert empty == {"events": [], "count": 0, "next_cursor": "5"}
    theirs = outsider.client().get(URL).json()  # another workspace: its own events only
    assert [e["cursor"] for e in theirs["events"]] == ["1", "2"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "abc"},
        {"after": "-1"},
        {"cursor": "1", "after": "2"},
        {"wait": "31"},
        {"wait": "-1"},
        {"limit": "0"},
        {"limit": "501"},
        {"cursor": "9" * 30},
    ],
)
def test_bad_parameters_are_a_400(viewer, query):
    response = viewer.client().get(URL, query)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "INVALID_REQUEST"


@pytest.mark.django_db
def test_anonymous_callers_are_refused(client):
    response = client.get(URL)
    assert response.status_code == 401 and response.json()["code"] == "AUTHENTICATION_REQUIRED"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["viewer", "operator", "reviewer", "admin", "agent"])
def test_every_member_may_follow_the_feed(request, role):
    member = request.getfixturevalue(role)
    record(member.workspace.pk, 1)
    assert member.client().get(URL).json()["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_decision_made_while_a_request_waits_ends_the_wait(operator, reviewer):
    run = awaiting(actor_for(operator), basic())
    client = reviewer.client()
    position = client.get(URL).json()["next_cursor"]  # run.started, gate.opened

    def decide() -> None:
        try:
            time.sleep(1.5)
            gate_decide(actor=actor_for(reviewer), run=run, decision="approve")
        finally:
            connection.close()

    thread = threading.Thread(target=decide)
    started = time.monotonic()
    thread.start()
    body = client.get(URL, {"cursor": position, "wait": 25}).json()
    waited = time.monotonic() - started
    thread.join(10)
    assert [e["type"] for e in body["events"]] == ["gate.decided"]
    assert body["events"][0]["data"]["run_id"] == run.run_id
    # It waited for the decision and answered soon after it, far from the 25 s it allowed.
    assert 1.0 <= waited < 15, waited


@pytest.mark.django_db(transaction=True)
def test_a_wait_with_nothing_happening_answers_empty_when_its_time_is_up(viewer):
    record(viewer.workspace.pk, 1)
    started = time.monotonic()
    body = viewer.client().get(URL, {"cursor": "1", "wait": 2}).json()
    assert body == {"events": [], "count": 0, "next_cursor": "1"}
    assert time.monotonic() - started >= 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [2, 8])
def test_a_page_costs_the_same_queries_whatever_its_length(
    viewer, django_assert_num_queries, count
):
    record(viewer.workspace.pk, count)
    client = viewer.client()
    # token + membership (authentication), the head (retention, tests/governance/
    # test_event_retention.py), the page
    with django_assert_num_queries(4):
        assert client.get(URL).json()["count"] == count
