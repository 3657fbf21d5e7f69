"""A gate decision retried with its `Idempotency-Key` returns the first answer instead of a 409
(issue 17): the client that lost the first response learns the outcome. A real worker parks
the run on its gate."""

from __future__ import annotations

import pytest

from approvals.models import GateDecision
from automations.models import Run, RunStatus
from tests.factories import simple_agents, simple_flow
from tests.support.wait import wait_for

URL = "/api/automations/v2"


@pytest.mark.django_db(transaction=True)
def test_a_retried_decision_returns_the_first_answer(operator, reviewer, celery_worker):
    body = {"automation_id": "weekly", "name": "Weekly", "flow": simple_flow()}
    operator.client().post(URL, {**body, "agents": simple_agents()}, format="json")
    run_id = operator.client().post(f"{URL}/weekly/run_now").json()["run"]["run_id"]
    wait_for(
        lambda: Run.objects.filter(run_id=run_id, status=RunStatus.AWAITING_APPROVAL).exists(),
        timeout=30,
    )
    client = reviewer.client()

    def decide(decision: str):
        return client.post(
            f"{URL}/runs/{run_id}/gate",
            {"decision": decision},
            format="json",
            HTTP_IDEMPOTENCY_KEY="decide-1",
        )

    first = decide("approve")
    assert first.status_code == 200, first.json()
    again = decide("approve")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert GateDecision.objects.filter(settles=True).count() == 1
    other = decide("cancel")
    assert other.status_code == 409
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    unkeyed = client.post(f"{URL}/runs/{run_id}/gate", {"decision": "approve"}, format="json")
    assert unkeyed.status_code == 409  # without the key a second decision is refused
