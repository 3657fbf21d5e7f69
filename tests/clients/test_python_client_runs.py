"""The Python client drives a run through its gate over real HTTP (issue 18, item 4).

A real Celery worker executes the run; the client only ever sees typed `Run` objects and
`FlowgateError`s, never raw responses.
"""

from __future__ import annotations

import httpx
import pytest
from flowgate_client import FlowgateClient, FlowgateError, Run

from automations.models import Run as RunRow
from tests.factories import create_automation
from tests.support.wait import wait_for


def until_status(client: FlowgateClient, run_id: str, status: str) -> Run:
    return wait_for(
        lambda: (run := client.get_run(run_id)).status == status and run,
        timeout=30,
        message=f"run {run_id} never reached {status}",
    )


@pytest.mark.django_db(transaction=True)
def test_run_now_gate_and_decision_through_the_client(operator, reviewer, connect, celery_worker):
    automation = create_automation(operator)["automation_id"]
    ops, rev = connect(operator), connect(reviewer)

    run = ops.run_now(automation, inputs={"topic": "q3"})
    assert isinstance(run, Run)
    assert run.status == "queued" and run.inputs == {"topic": "q3"}

    waiting = until_status(ops, run.run_id, "awaiting_approval")
    gate = waiting.awaiting_gate
    assert gate is not None and "draft" in waiting.node_outputs

    decided = rev.decide_gate(
        run.run_id,
        decision="approve",
        reason="fine",
        approval_request_id=gate["approval_request_id"],
        transition_id=gate["transition_id"],
    )
    assert decided.awaiting_gate is None
    done = until_status(ops, run.run_id, "completed")
    assert [d["decision"] for d in done.checkpoint["gate_history"]] == ["approve"]


@pytest.mark.django_db(transaction=True)
def test_run_control_and_errors_are_typed(operator, reviewer, agent, connect, no_broker):
    automation = create_automation(operator)["automation_id"]
    ops = connect(operator)
    run = ops.run_now(automation)

    assert ops.pause_run(run.run_id, reason="provider outage").status == "paused"
    assert ops.resume_run(run.run_id).status == "queued"
    cancelled = ops.cancel_run(run.run_id, reason="kill switch")
    assert cancelled.status == "cancelled" and cancelled.finished

    with pytest.raises(FlowgateError) as missing:
        ops.get_run("run-does-not-exist")
    assert (missing.value.status, missing.value.code) == (404, "AUTOMATION_V2_RUN_NOT_FOUND")

    with pytest.raises(FlowgateError) as not_pausable:
        ops.pause_run(run.run_id)
    assert (not_pausable.value.status, not_pausable.value.code) == (
        409,
        "AUTOMATION_V2_RUN_NOT_PAUSABLE",
    )

    with pytest.raises(FlowgateError) as agent_decides:
        connect(agent).decide_gate(run.run_id, decision="approve")
    assert agent_decides.value.status in (403, 404)


class DropFirstAnswer(httpx.BaseTransport):
    """Delivers every request to the server but loses the first answer on the way back.

    The server acted; the client cannot know. A client that retries without the same
    Idempotency-Key would start a second run.
    """

    def __init__(self):
        self.inner = httpx.HTTPTransport()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.sent += 1
        if self.sent == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the request was processed")
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.mark.django_db(transaction=True)
def test_a_retried_run_now_after_a_lost_answer_starts_one_run(operator, connect, no_broker):
    automation = create_automation(operator)["automation_id"]
    transport = DropFirstAnswer()
    client = connect(operator, transport=transport)

    run = client.run_now(automation)

    assert transport.sent == 2
    assert list(RunRow.objects.values_list("run_id", flat=True)) == [run.run_id]


@pytest.mark.django_db(transaction=True)
def test_a_write_without_a_key_is_not_retried(operator, reviewer, connect, no_broker):
    automation = create_automation(operator)["automation_id"]
    run = connect(operator).run_now(automation)
    transport = DropFirstAnswer()

    with pytest.raises(httpx.ReadError):
        connect(operator, transport=transport).pause_run(run.run_id)
    assert transport.sent == 1
