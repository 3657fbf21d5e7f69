"""`GET /api/approvals/requests/{id}?wait=`: a long poll that returns as soon as a decision
commits in another thread (real threads on PostgreSQL, the Redis wake-up channel), and the
bounded wait of a request nobody decides."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from approvals.requests import request_decide
from approvals.selectors import request_get
from tests.factories import REQUESTS_URL, actor_for, ask

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


def decide_later(reviewer, request_id: str, delay: float) -> threading.Thread:
    def run() -> None:
        try:
            time.sleep(delay)
            actor = actor_for(reviewer)
            request_decide(
                actor=actor,
                request=request_get(actor, request_id),
                decision="approve",
                arguments={"amount": 80},
            )
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_wait_returns_as_soon_as_another_thread_decides(agent, reviewer, monkeypatch):
    # No re-read before 30 s: only the decision's wake-up can end the wait earlier.
    monkeypatch.setattr("approvals.requests.POLL_S", 30.0)
    asked = ask(agent)
    thread = decide_later(reviewer, asked["request_id"], delay=1.0)
    started = time.monotonic()
    response = agent.client().get(f"{REQUESTS_URL}/{asked['request_id']}", {"wait": 60})
    waited = time.monotonic() - started
    thread.join()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved" and body["approved_arguments"]["amount"] == 80
    # Woken by the decision (about one second in), not by the 30 s re-read nor the 60 s bound.
    assert waited < 20


def test_wait_ends_after_the_bounded_time_while_pending(agent):
    asked = ask(agent)
    started = time.monotonic()
    response = agent.client().get(f"{REQUESTS_URL}/{asked['request_id']}", {"wait": 1})
    assert response.status_code == 200 and response.json()["status"] == "pending"
    assert time.monotonic() - started >= 1


def test_wait_is_bounded(agent):
    asked = ask(agent)
    response = agent.client().get(f"{REQUESTS_URL}/{asked['request_id']}", {"wait": 61})
    assert response.status_code == 400 and "wait" in response.json()["fields"]
