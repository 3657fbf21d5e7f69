"""A quorum gate's cards follow its progress: after each approval that does not settle it, a
real Celery worker edits every card (Slack, Discord, Telegram stand-ins) to show "1 of 2
approvals" and who approved, keeping the buttons; the approval that completes the quorum then
closes them like any decision."""

from __future__ import annotations

import pytest

from approvals.decisions import gate_decide
from channels.models import ApprovalMessage, MessageState
from governance.models import Role
from tests.factories import actor_for, add_to_group, card_gate
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]

POLICY = {
    "risk_tier": "external_send",
    "quorum": {"required_approvals": 2, "groups": [{"group": "finance", "approvals": 1}]},
}


@pytest.fixture
def worker(celery_worker_factory, chat_fakes):
    return celery_worker_factory(env={**chat_fakes.env, "FLOWGATE_CHAT_RETRY_BACKOFF_S": "0.2"})


def cards(gate) -> dict[str, ApprovalMessage]:
    rows = ApprovalMessage.objects.filter(gate=gate).select_related("connection")
    return {m.connection.kind: m for m in rows}


def shown(chat_fakes, gate) -> dict[str, str]:
    """Each platform's card, as the platform now shows it, flattened to text."""
    c = cards(gate)
    return {
        "slack": str(chat_fakes.slack.messages[("C0FLOWGATE", c["slack"].message_id)]),
        "discord": str(
            chat_fakes.discord.messages[("1100000000000000001", c["discord"].message_id)]
        ),
        "telegram": str(chat_fakes.telegram.messages[("-1001234567890", c["telegram"].message_id)]),
    }


def test_partial_approvals_update_the_cards_and_keep_their_buttons(
    chat_fakes, worker, operator, make_member
):
    first = make_member("acme/ops", "fran-first", role=Role.REVIEWER)
    treasurer = make_member("acme/ops", "tess-treasurer", role=Role.REVIEWER)
    add_to_group(treasurer, "finance")
    chat_fakes.connect(operator.workspace)
    gate = card_gate(operator, policy=POLICY)
    wait_for(
        lambda: (
            {k for k, m in cards(gate).items() if m.state == MessageState.POSTED}
            == {"slack", "discord", "telegram"}
        ),
        timeout=20,
        message="the cards to be posted",
    )
    assert all("0 of 2 approvals (finance: 0 of 1)" in t for t in shown(chat_fakes, gate).values())

    gate_decide(actor=actor_for(first), run=gate.run, decision="approve", source="page")
    wait_for(
        lambda: {m.rendered_outcome for m in cards(gate).values()} == {"progress:1"},
        timeout=20,
        message="every card to show the first approval",
    )
    now = shown(chat_fakes, gate)
    for text in now.values():
        assert "1 of 2 approvals (finance: 0 of 1); approved by fran-first" in text
    assert "fg_approve" in now["slack"]  # the buttons stay: the gate is still open
    assert "'components': [{" in now["discord"]
    assert "inline_keyboard" in now["telegram"]
    assert {m.state for m in cards(gate).values()} == {MessageState.POSTED}

    gate_decide(actor=actor_for(treasurer), run=gate.run, decision="approve", source="page")
    wait_for(
        lambda: {m.rendered_outcome for m in cards(gate).values()} == {"approve"},
        timeout=20,
        message="every card to show the settled approval",
    )
    now = shown(chat_fakes, gate)
    assert all("Approved by tess-treasurer" in t for t in now.values())
    assert "fg_approve" not in now["slack"]
