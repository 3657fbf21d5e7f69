"""Outbound webhooks end to end (issue 17 item 1): a real Celery worker POSTs to a local receiver
over real HTTP; signatures are checked with the `standardwebhooks` package a receiver would use.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from approvals.decisions import gate_decide
from automations.models import RunStatus
from automations.runs import control
from channels.models import DeliveryStatus, WebhookDelivery
from governance.models import WorkspaceEvent
from tests.factories import actor_for, awaiting, basic, fresh, make_run, webhook_endpoint
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GATE_EVENTS = ("gate.opened", "gate.decided")
ALL_EVENTS = ("run.started", "gate.opened", "gate.decided", "run.completed")


def received(stand_in, secret: str) -> list[dict]:
    """Every request the receiver got, verified as a receiver would (raises if one is not)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in stand_in.requests]


def deliveries_api(admin, endpoint) -> list[dict]:
    response = admin.client().get(f"/api/webhooks/{endpoint.pk}/deliveries")
    assert response.status_code == 200, response.content
    return response.json()["deliveries"]


def test_a_gate_opening_and_its_decision_arrive_signed_and_in_order(
    admin, operator, reviewer, stand_in, webhook_worker
):
    endpoint, secret = webhook_endpoint(actor_for(admin), f"{stand_in.url}/hooks", *ALL_EVENTS)
    run = awaiting(actor_for(operator), basic())  # the engine parks it on its gate
    wait_for(lambda: len(stand_in.requests) == 2, timeout=20)

    outcome = gate_decide(actor=actor_for(reviewer), run=run, decision="approve", reason="LGTM")
    assert outcome.run.status == RunStatus.QUEUED
    wait_for(lambda: fresh(run).status == RunStatus.COMPLETED, timeout=30)
    wait_for(lambda: len(stand_in.requests) == 4, timeout=20)

    bodies = received(stand_in, secret)  # every signature verifies with the endpoint's secret
    assert [b["type"] for b in bodies] == list(ALL_EVENTS)
    opened, decided = bodies[1], bodies[2]
    assert opened["data"]["run_id"] == decided["data"]["run_id"] == run.run_id
    assert opened["data"]["gate_id"] == decided["data"]["gate_id"] == outcome.gate.pk
    assert decided["data"]["decision"] == "approve" and decided["data"]["reason"] == "LGTM"
    assert decided["data"]["decided_by"]["actor_id"] == reviewer.user.username
    request = stand_in.requests[2]
    assert request.path == "/hooks"
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    # The webhook-id is the event's id: the feed carries the same events, in the same order.
    feed = reviewer.client().get("/api/events").json()["events"]
    assert [(e["event_id"], e["type"]) for e in feed if e["type"] in ALL_EVENTS] == [
        (r.headers["webhook-id"], b["type"]) for r, b in zip(stand_in.requests, bodies, strict=True)
    ]
    assert [e["data"] for e in feed if e["type"] in ALL_EVENTS] == [b["data"] for b in bodies]
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)

    log = deliveries_api(admin, endpoint)
    assert [d["status"] for d in log] == ["delivered"] * 4
    assert all(d["response_code"] == 200 and d["attempts"] == 1 for d in log)


def test_a_receiver_answering_500_then_200_gets_it_again_and_later_ones_wait(
    admin, operator, reviewer, stand_in, webhook_worker
):
    """The failed delivery is retried after the backoff, and the decision's delivery, made
    while the opening's waits for its retry, is not sent before it: order per endpoint."""
    stand_in.statuses = [500]
    endpoint, secret = webhook_endpoint(actor_for(admin), stand_in.url, *GATE_EVENTS)
    run = awaiting(actor_for(operator), basic())
    wait_for(lambda: len(stand_in.requests) == 1, timeout=20)  # answered 500
    gate_decide(actor=actor_for(reviewer), run=run, decision="cancel")  # while it waits
    wait_for(lambda: len(stand_in.requests) == 3, timeout=20)

    bodies = received(stand_in, secret)
    assert [b["type"] for b in bodies] == ["gate.opened", "gate.opened", "gate.decided"]
    ids = [r.headers["webhook-id"] for r in stand_in.requests]
    assert ids[0] == ids[1] != ids[2]  # a retry is the same message
    decided, opened = wait_for(
        lambda: (log := deliveries_api(admin, endpoint))[0]["status"] == "delivered" and log
    )
    assert opened["event_type"] == "gate.opened"
    assert opened["status"] == "delivered" and opened["attempts"] == 2
    assert [a["status_code"] for a in opened["attempt_log"]] == [500, 200]
    assert opened["attempt_log"][0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] >= 0 for a in opened["attempt_log"])
    assert decided["event_type"] == "gate.decided" and decided["attempts"] == 1


def test_a_change_that_rolls_back_sends_nothing(admin, operator, stand_in, webhook_worker):
    webhook_endpoint(actor_for(admin), stand_in.url, "run.paused")
    op = actor_for(operator)
    rolled_back = make_run(op, basic(), status=RunStatus.QUEUED, automation_id="first")
    committed = make_run(op, basic(), status=RunStatus.QUEUED, automation_id="second")

    with pytest.raises(RuntimeError), transaction.atomic():
        control.run_pause(actor=op, run=rolled_back, reason="never happened")
        raise RuntimeError("the request failed after the pause")
    control.run_pause(actor=op, run=committed, reason="held")

    wait_for(lambda: len(stand_in.requests) == 1, timeout=20)
    assert [r.json()["data"]["run_id"] for r in stand_in.requests] == [committed.run_id]
    assert fresh(rolled_back).status != RunStatus.PAUSED
    paused = WorkspaceEvent.objects.filter(event_type="run.paused")
    assert [e.data["run_id"] for e in paused] == [committed.run_id]
    assert WebhookDelivery.objects.count() == 1


def test_redelivery_sends_the_same_message_again(admin, operator, stand_in, webhook_worker):
    endpoint, secret = webhook_endpoint(actor_for(admin), stand_in.url, "run.paused")
    op = actor_for(operator)
    run = make_run(op, basic(), status=RunStatus.QUEUED)
    control.run_pause(actor=op, run=run, reason="held")
    first = wait_for(
        lambda: WebhookDelivery.objects.get(status=DeliveryStatus.DELIVERED, endpoint=endpoint)
    )

    response = admin.client().post(f"/api/webhooks/{endpoint.pk}/deliveries/{first.pk}/redeliver")
    assert response.status_code == 201, response.content
    again = response.json()
    assert again["redelivery_of"] == first.pk and again["status"] == "pending"
    wait_for(lambda: len(stand_in.requests) == 2, timeout=20)
    bodies = received(stand_in, secret)
    assert bodies[0] == bodies[1]
    assert stand_in.requests[0].headers["webhook-id"] == stand_in.requests[1].headers["webhook-id"]
    log = wait_for(
        lambda: (rows := deliveries_api(admin, endpoint))[0]["status"] == "delivered" and rows
    )
    assert [d["delivery_id"] for d in log] == [again["delivery_id"], first.pk]


def test_a_delivery_refused_by_the_allowlist_at_send_time_fails_without_retrying(
    admin, operator, stand_in, celery_worker_factory, allow_loopback
):
    """The endpoint was allowed when saved; the worker's allowlist no longer lists its host:
    the send is refused for good (nothing reaches the receiver), and the log says why."""
    celery_worker_factory(env={"FLOWGATE_HTTP_ALLOWED_HOSTS": "hooks.example.com"})
    webhook_endpoint(actor_for(admin), stand_in.url, "run.paused")
    op = actor_for(operator)
    control.run_pause(actor=op, run=make_run(op, basic(), status=RunStatus.QUEUED), reason="x")
    failed = wait_for(lambda: WebhookDelivery.objects.get(status=DeliveryStatus.FAILED))
    assert failed.attempts == 1 and "FLOWGATE_HTTP_ALLOWED_HOSTS" in failed.last_error
    assert stand_in.requests == []


def test_the_body_is_what_the_issue_names(admin, operator, stand_in, webhook_worker):
    webhook_endpoint(actor_for(admin), stand_in.url, "run.paused")
    op = actor_for(operator)
    run = make_run(op, basic(), status=RunStatus.QUEUED)
    control.run_pause(actor=op, run=run, reason="held")
    wait_for(lambda: stand_in.requests, timeout=20)
    body = json.loads(stand_in.requests[0].body)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "run.paused"
    assert body["data"] == {
        "run_id": run.run_id,
        "automation_id": run.automation.automation_id,
        "status": "paused",
        "previous_status": "queued",
        "cause": "pause",
    }
