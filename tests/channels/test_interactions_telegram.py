"""`POST /channels/telegram/interactions`: webhook updates verified by the secret-token header;
callback answers go through the Telegram stand-in, replies come back in the webhook response."""

from __future__ import annotations

import pytest

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations.models import RunStatus
from channels.interactions.telegram import PAGE_SENT
from tests.factories import actor_for, gate_for, link, reopen
from tests.support.interactions import (
    TELEGRAM_BOT_ID,
    decisions,
    denial_codes,
    snapshot,
    telegram_post,
    telegram_press,
    telegram_reply,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RITA = "5000001"


@pytest.fixture
def gate(operator):
    return gate_for(operator)


@pytest.fixture
def telegram(chat_fakes, gate):
    return chat_fakes.connect(gate.workspace, kinds=["telegram"])["telegram"]


@pytest.fixture
def rita(reviewer):
    link(reviewer, "telegram", RITA, name="rita")
    return reviewer


def answers(chat_fakes) -> list[tuple[str, str]]:
    return [
        (r.body["callback_query_id"], r.body["text"])
        for r in chat_fakes.telegram.calls("answerCallbackQuery")
    ]


def test_approve_by_a_linked_reviewer_applies(chat_fakes, telegram, gate, rita):
    response = telegram_post(telegram_press(gate.pk, "approve"))

    assert response.status_code == 200
    gate.run.refresh_from_db()
    assert gate.run.status == RunStatus.QUEUED
    assert decisions(gate) == [("approve", "telegram", "rita-reviewer", "")]
    [(query, text)] = answers(chat_fakes)
    assert query == "cbq-1" and text.startswith("Approved: ")


def test_wrong_missing_and_replayed_deliveries_change_nothing(chat_fakes, telegram, gate, rita):
    before = snapshot(gate)
    assert telegram_post(telegram_press(gate.pk, "approve"), secret="guess").status_code == 401
    assert telegram_post(telegram_press(gate.pk, "approve"), secret=None).status_code == 401
    assert snapshot(gate) == before

    press = telegram_press(gate.pk, "approve", update_id=7)
    telegram_post(press)
    after_first = snapshot(gate)
    assert telegram_post(press).status_code == 200  # Telegram re-delivers unacknowledged updates
    assert snapshot(gate) == after_first
    assert len(answers(chat_fakes)) == 1


def test_an_unlinked_user_gets_the_link_in_a_private_chat(chat_fakes, telegram, gate):
    response = telegram_post(telegram_press(gate.pk, "approve", user=5999))

    assert decisions(gate) == []
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"]
    [(_, text)] = answers(chat_fakes)
    assert "not linked to Flowgate" in text
    sent = response.json()
    assert (sent["method"], sent["chat_id"]) == ("sendMessage", "5999")  # private, not the group
    assert sent["text"].startswith("Your Telegram account is not linked to Flowgate: http")


def test_the_requester_cannot_approve_their_own_consequential_gate(chat_fakes, admin):
    """A Telegram click may never approve a consequential gate (its webhook secret is the
    workspace admin's): the requester is sent to the approval page, where the self-approval
    rule refuses them."""
    gate = gate_for(admin, policy={"data_classes": ["regulated"]})
    chat_fakes.connect(gate.workspace, kinds=["telegram"])
    link(admin, "telegram", "5000042")

    telegram_post(telegram_press(gate.pk, "approve", user=5000042))

    assert decisions(gate) == []
    assert answers(chat_fakes)[0][1] == PAGE_SENT


def test_a_stale_card_cannot_decide_the_current_opening(chat_fakes, telegram, gate, rita, reviewer):
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="rework", reason="again")
    current = reopen(gate)

    telegram_post(telegram_press(gate.pk, "approve"))

    current.refresh_from_db()
    assert current.status == GateStatus.OPEN
    assert answers(chat_fakes)[0][1].startswith("Already sent back for rework by rita-reviewer")


def test_rework_asks_with_a_force_reply_and_the_reply_records_the_reason(
    chat_fakes, telegram, gate, rita
):
    telegram_post(telegram_press(gate.pk, "rework", update_id=10))

    [prompt] = chat_fakes.telegram.calls("sendMessage")
    assert prompt.body["reply_markup"]["force_reply"] is True
    assert prompt.body["chat_id"] == "-1001234567890"
    assert prompt.body["text"].endswith(f"fg:rework:{gate.pk}")
    assert answers(chat_fakes)[0][1] == "Reply to my message with the reason for rework."
    assert decisions(gate) == []

    # The prompt as Telegram sent it: from our bot, whose id is its token's numeric prefix.
    bot = prompt.response["result"]["from"]["id"]
    assert bot == TELEGRAM_BOT_ID
    other_bot = telegram_reply(prompt.body["text"], "sneaky", update_id=11, bot=bot + 1)
    assert telegram_post(other_bot).status_code == 200
    assert decisions(gate) == []  # a reply to the same text from another bot counts for nothing

    response = telegram_post(telegram_reply(prompt.body["text"], "Use the new logo", update_id=12))

    assert decisions(gate) == [("rework", "telegram", "rita-reviewer", "Use the new logo")]
    sent = response.json()
    assert sent["method"] == "sendMessage" and sent["text"].startswith("Sent back for rework: ")


def test_a_gate_title_naming_another_gate_cannot_redirect_the_reply(
    chat_fakes, telegram, gate, rita, operator
):
    """The prompt quotes the gate's title, which its author controls: only the action value on
    the prompt's last line counts, not one planted in the title."""
    other = gate_for(operator, automation_id="other-report")
    Gate.objects.filter(pk=gate.pk).update(title=f"Ship it fg:rework:{other.pk} now")
    telegram_post(telegram_press(gate.pk, "rework", update_id=30))
    [prompt] = chat_fakes.telegram.calls("sendMessage")
    assert f"fg:rework:{other.pk}" in prompt.body["text"]  # quoted in the prompt

    telegram_post(telegram_reply(prompt.body["text"], "Fix the totals", update_id=31))

    assert decisions(gate) == [("rework", "telegram", "rita-reviewer", "Fix the totals")]
    assert decisions(other) == []


def test_only_the_last_line_of_our_prompt_names_the_action(telegram, gate, rita):
    """A reply decides rework only: an approve value, or one not on the last line, is ignored."""
    for update_id, text in enumerate(
        [f"fg:approve:{gate.pk}", f"fg:rework:{gate.pk}\nand then some"], start=40
    ):
        assert telegram_post(telegram_reply(text, "why", update_id=update_id)).status_code == 200
    assert decisions(gate) == []


def test_the_prompt_mentions_only_a_real_username(chat_fakes, telegram, gate, rita):
    """A user without a username is not "@<first name>": that may be someone else's handle."""
    press = telegram_press(gate.pk, "rework", update_id=50)
    del press["callback_query"]["from"]["username"]
    telegram_post(press)
    telegram_post(telegram_press(gate.pk, "rework", update_id=51))

    first, second = (c.body["text"] for c in chat_fakes.telegram.calls("sendMessage"))
    assert first.startswith("Reply to this message") and "@Rita" not in first
    assert second.startswith("@rita, reply to this message")


def test_a_reply_to_a_message_not_sent_by_our_bot_decides_nothing(telegram, gate, rita):
    """Anyone can type an action value; only a reply to our bot's prompt counts."""
    forged = telegram_reply(f"fg:rework:{gate.pk}", "sneaky", bot=999)
    assert telegram_post(forged).status_code == 200
    assert decisions(gate) == []


def test_an_empty_reply_asks_again_and_decides_nothing(telegram, gate, rita):
    response = telegram_post(telegram_reply(f"text\n\nfg:rework:{gate.pk}", "  "))
    assert response.json()["text"] == "Say what should change: a rework needs a reason."
    assert decisions(gate) == []


def test_signed_but_unusable_updates_answer_200_with_words_and_decide_nothing(
    chat_fakes, telegram, gate, rita, outsider
):
    """Only an unverifiable update is an HTTP error: Telegram delivers anything else again and
    again. A press that decides nothing stops the button's spinner with the reason."""
    theirs = gate_for(outsider, automation_id="globex-report")
    unknown = telegram_press(gate.pk, "approve", update_id=21)
    unknown["callback_query"]["data"] = f"fg:frobnicate:{gate.pk}"
    for update in (
        unknown,
        telegram_press("no-such-gate", "approve", update_id=22),
        telegram_press(theirs.pk, "cancel", update_id=23),
    ):
        assert telegram_post(update).status_code == 200
    for malformed in ([], {"update_id": "1"}):
        response = telegram_post(malformed)
        assert response.status_code == 200
        assert response.json()["ignored"].startswith("expected an update object")

    assert answers(chat_fakes) == [
        ("cbq-21", "This button is not from a Flowgate card: nothing was decided."),
        ("cbq-22", "This approval no longer exists."),
        ("cbq-23", "This approval no longer exists."),
    ]
    assert GateDecision.objects.count() == 0
    assert set(Gate.objects.values_list("status", flat=True)) == {GateStatus.OPEN}


def test_an_unverified_malformed_update_is_401(telegram):
    assert telegram_post([], secret="guess").status_code == 401
