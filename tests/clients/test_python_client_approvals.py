"""An agent asks for approval with the Python client, a human approves with an edit, and the
agent acts on what was approved (issue 18, items 2 and 4), over real HTTP.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from flowgate_client import ApprovalTimeout, AsyncFlowgateClient, FlowgateError

from tests.support.async_run import run_async

PAYMENT = {"amount": 120, "to": "acme", "memo": "invoice 42"}
EDITABLE = {
    "paths": ["amount"],
    "schema": {
        "type": "object",
        "properties": {"amount": {"type": "number", "minimum": 1, "maximum": 500}},
    },
}


def act(arguments: dict) -> str:
    """What the agent does with an approval: it pays exactly what was approved."""
    return f"paid {arguments['amount']} to {arguments['to']}"


def decide_later(client, request_id: str, delay: float = 0.5, **decision) -> threading.Thread:
    def decide():
        time.sleep(delay)
        client.decide_approval(request_id, **decision)

    thread = threading.Thread(target=decide)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_request_approve_with_edit_and_act(agent, reviewer, connect):
    bot, human = connect(agent), connect(reviewer)
    approval = bot.request_approval(
        action="payments.send",
        arguments=PAYMENT,
        summary="Pay invoice 42",
        context={"text": "Monthly hosting", "links": []},
        editable=EDITABLE,
    )
    assert approval.request.status == "pending"
    assert approval.request.url

    thread = decide_later(
        human,
        approval.request_id,
        decision="approve",
        reason="hosting is 100 now",
        arguments={**PAYMENT, "amount": 100},
    )
    decided = approval.wait(timeout=30)
    thread.join()

    assert decided.approved
    assert decided.arguments == PAYMENT  # what was proposed stays on record
    assert decided.approved_arguments == {**PAYMENT, "amount": 100}
    assert decided.decision is not None and decided.decision.edited
    assert act(decided.approved_arguments) == "paid 100 to acme"


@pytest.mark.django_db(transaction=True)
def test_a_wait_resumes_by_id_after_a_restart(agent, reviewer, connect):
    first = connect(agent).request_approval(
        action="email.send", arguments={"to": "all@corp"}, summary="Mail everyone"
    )
    with pytest.raises(ApprovalTimeout) as timed_out:
        first.wait(timeout=1)
    assert timed_out.value.request.status == "pending"

    # A new process knows only the id.
    resumed = connect(agent).approval(first.request_id)
    thread = decide_later(connect(reviewer), first.request_id, decision="cancel", reason="no")
    decided = resumed.wait(timeout=30)
    thread.join()
    assert decided.status == "cancelled" and decided.approved_arguments is None


@pytest.mark.django_db(transaction=True)
def test_the_same_idempotency_key_returns_the_same_request(agent, connect):
    bot = connect(agent)
    ask = {"action": "sql.run", "arguments": {"sql": "DELETE FROM t"}, "summary": "Clean t"}
    one = bot.request_approval(idempotency_key="k-1", **ask)
    two = bot.request_approval(idempotency_key="k-1", **ask)
    assert one.request_id == two.request_id
    assert [r.request_id for r in bot.list_approvals()] == [one.request_id]

    with pytest.raises(FlowgateError) as reused:
        bot.request_approval(idempotency_key="k-1", **{**ask, "summary": "Something else"})
    assert reused.value.status == 409


@pytest.mark.django_db(transaction=True)
def test_the_async_client_waits_for_the_decision(agent, reviewer, live_server, connect):
    human = connect(reviewer)

    async def agent_flow() -> str:
        async with AsyncFlowgateClient(live_server.url, agent.token) as bot:
            approval = await bot.request_approval(
                action="payments.send", arguments=PAYMENT, summary="Pay", editable=EDITABLE
            )
            thread = decide_later(human, approval.request_id, decision="approve", reason="ok")
            decided = await approval.wait(timeout=30)
            await asyncio.to_thread(thread.join)
            return act(decided.approved_arguments)

    assert run_async(agent_flow()) == "paid 120 to acme"


@pytest.mark.django_db(transaction=True)
def test_a_request_a_standing_approval_covers_is_approved_at_once(agent, reviewer, connect):
    from datetime import timedelta

    from django.utils import timezone

    from approvals.standing import standing_create
    from tests.factories import actor_for

    grant = standing_create(
        actor=actor_for(reviewer),
        data={
            "action": "payments.send",
            "grantee": agent.user.username,
            "constraints": {"properties": {"amount": {"maximum": 200}}},
            "expires_at": timezone.now() + timedelta(days=1),
            "reason": "small payments",
        },
    )
    approval = connect(agent).request_approval(
        action="payments.send", arguments=PAYMENT, summary="Pay invoice 42"
    )
    assert approval.request.approved  # no wait: approved when it was made
    decided = approval.wait(timeout=1)
    assert decided.decision is not None
    assert (decided.decision.surface, decided.decision.standing_approval) == ("standing", grant.pk)
    assert act(decided.approved_arguments) == "paid 120 to acme"
