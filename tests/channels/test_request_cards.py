"""Chat cards of approval requests (issue 18): an agent's request is posted to Slack like any
gate, with its action and arguments, through a real Celery worker to the local Slack stand-in;
edits and answers are made on the approval page the card links to."""

from __future__ import annotations

import pytest

from approvals.models import Gate
from channels.actions import decode_action
from channels.models import ApprovalMessage, MessageState
from tests.factories import ask
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


def test_an_agents_request_gets_a_slack_card_with_its_arguments(
    chat_fakes, celery_worker_factory, agent
):
    celery_worker_factory(env=chat_fakes.env)
    chat_fakes.connect(agent.workspace, kinds=("slack",))
    asked = ask(agent)
    gate = Gate.objects.get(pk=asked["gate_id"])
    wait_for(
        lambda: ApprovalMessage.objects.filter(gate=gate, state=MessageState.POSTED).exists(),
        timeout=20,
        message="the request's Slack card posted",
    )
    (posted,) = chat_fakes.slack.calls("chat.postMessage")
    blocks = posted.body["blocks"]
    text = "\n".join(
        block["text"]["text"] for block in blocks if isinstance(block.get("text"), dict)
    )
    assert "Pay invoice 42" in text
    assert "Invoice 42 from ACME, due Friday." in text
    assert "*Approval request (edit or answer on the approval page)*" in text
    assert "• `action`: payments.send" in text and "• `amount`: 100" in text
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [decode_action(e["value"]).decision for e in actions["elements"]] == [
        "approve",
        "rework",
        "cancel",
    ]
    links = [b for b in blocks if b["type"] == "context"]
    assert asked["url"] in links[0]["elements"][0]["text"]
