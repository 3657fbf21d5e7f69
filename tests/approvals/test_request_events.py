"""An approval request's life is in the workspace's event feed, and so in its webhooks (issue 18:
"the events feed and webhooks carry its events"), recorded in the transaction of each change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.expiry import sweep_gates
from approvals.models import Gate
from governance.models import WorkspaceEvent
from tests.factories import REQUESTS_URL, ask

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def request_events(request_id: str) -> list[tuple[str, dict]]:
    return [
        (event.event_type, event.data)
        for event in WorkspaceEvent.objects.filter(
            event_type__startswith="approval_request."
        ).order_by("pk")
        if event.data["request_id"] == request_id
    ]


def test_created_and_decided_with_edits_are_events(agent, reviewer):
    asked = ask(agent)
    [(kind, data)] = request_events(asked["request_id"])
    assert kind == "approval_request.created"
    assert data["action"] == "payments.send" and data["gate_id"] == asked["gate_id"]
    assert data["run_id"] == asked["run_id"] and data["approval_url"] == asked["url"]

    decided = reviewer.client().post(
        f"{REQUESTS_URL}/{asked['request_id']}/decide",
        {"decision": "approve", "arguments": {"amount": 90}},
        format="json",
    )
    assert decided.status_code == 200, decided.json()
    kinds = request_events(asked["request_id"])
    assert [k for k, _ in kinds] == ["approval_request.created", "approval_request.decided"]
    assert kinds[1][1]["decision"] == "approve" and kinds[1][1]["edited"] is True


def test_expiry_and_a_cancelled_run_are_events(agent, operator):
    expiring = ask(agent, expiry={"expires_after_s": 60})
    Gate.objects.filter(pk=expiring["gate_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    sweep_gates()
    assert [k for k, _ in request_events(expiring["request_id"])] == [
        "approval_request.created",
        "approval_request.expired",
    ]

    stopped = ask(agent, summary="Another payment")
    response = operator.client().post(
        f"/api/automations/v2/runs/{stopped['run_id']}/cancel", {"reason": "no"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert [k for k, _ in request_events(stopped["request_id"])] == [
        "approval_request.created",
        "approval_request.cancelled",
    ]


def test_a_refused_decision_records_no_event(agent):
    asked = ask(agent)
    refused = agent.client().post(
        f"{REQUESTS_URL}/{asked['request_id']}/decide", {"decision": "approve"}, format="json"
    )
    assert refused.status_code == 403
    assert [k for k, _ in request_events(asked["request_id"])] == ["approval_request.created"]
