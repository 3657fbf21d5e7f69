"""Updating cards after a gate closes, through a real Celery worker and the platform stand-ins:
every card on every platform shows the outcome, decider, surface and time without buttons, with
a thread reply, whatever surface decided (API, approval page) or when the gate expired; running
the update again changes nothing; 429s and 5xx are retried until the update is delivered."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.expiry import sweep_gates
from approvals.models import Gate, GateDecision
from channels import delivery, tasks
from channels.models import ApprovalMessage, MessageState
from tests.factories import actor_for, card_gate
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]

FAST_RETRIES = {"FLOWGATE_CHAT_RETRY_BACKOFF_S": "0.2", "FLOWGATE_CHAT_MAX_RETRIES": "6"}
WHEN = r"at \d\d:\d\d UTC on \d{4}-\d\d-\d\d\."


@pytest.fixture
def worker(celery_worker_factory, chat_fakes):
    return celery_worker_factory(env={**chat_fakes.env, **FAST_RETRIES})


@pytest.fixture
def posted_gate(chat_fakes, worker, operator, reviewer):
    """A gate whose card is posted on all three platforms; the reviewer is "Rita Reviewer"."""
    reviewer.user.first_name, reviewer.user.last_name = "Rita", "Reviewer"
    reviewer.user.save(update_fields=["first_name", "last_name"])
    chat_fakes.connect(operator.workspace)
    gate = card_gate(operator)
    wait_for(lambda: cards(gate, MessageState.POSTED).keys() == {"slack", "discord", "telegram"})
    return gate


def cards(gate, state=None) -> dict[str, ApprovalMessage]:
    rows = ApprovalMessage.objects.filter(gate=gate).select_related("connection")
    if state:
        rows = rows.filter(state=state)
    return {m.connection.kind: m for m in rows}


def wait_updated(gate, timeout=20) -> dict[str, ApprovalMessage]:
    def done():
        found = cards(gate, MessageState.UPDATED)
        return len(found) == 3 and all(m.reply_id for m in found.values()) and found

    return wait_for(done, timeout=timeout, message="all three cards updated with a reply")


def shown(chat_fakes, gate) -> dict[str, dict]:
    """Each platform's card as the platform now shows it."""
    c = cards(gate)
    return {
        "slack": chat_fakes.slack.messages[("C0FLOWGATE", c["slack"].message_id)],
        "discord": chat_fakes.discord.messages[("1100000000000000001", c["discord"].message_id)],
        "telegram": chat_fakes.telegram.messages[("-1001234567890", c["telegram"].message_id)],
    }


def assert_cards_show(chat_fakes, gate, headline: str) -> None:
    """Every card shows `headline` (a regex), has no buttons, and got one matching reply."""
    now = shown(chat_fakes, gate)
    pattern = re.compile(headline)
    assert pattern.search(str(now["slack"]["blocks"]))
    assert not [b for b in now["slack"]["blocks"] if b["type"] == "actions"]
    assert pattern.search(now["discord"]["embeds"][0]["description"])
    assert now["discord"]["components"] == []
    assert pattern.search(now["telegram"]["text"])
    assert "reply_markup" not in now["telegram"]

    c = cards(gate)
    delivered = [r for fake in chat_fakes.fakes.all for r in fake.requests if r.status == 200]
    (slack_reply,) = [
        r for r in chat_fakes.slack.calls("chat.postMessage") if r.body.get("thread_ts")
    ]
    assert slack_reply.body["thread_ts"] == c["slack"].message_id
    assert pattern.search(slack_reply.body["text"])
    (discord_reply,) = [
        r for r in delivered if r.call == "create_message" and r.body.get("message_reference")
    ]
    assert discord_reply.body["message_reference"]["message_id"] == c["discord"].message_id
    assert pattern.search(discord_reply.body["content"])
    (telegram_reply,) = [
        r for r in delivered if r.call == "sendMessage" and r.body.get("reply_parameters")
    ]
    assert telegram_reply.body["reply_parameters"]["message_id"] == int(c["telegram"].message_id)
    assert pattern.search(telegram_reply.body["text"])


def test_decision_through_the_api_updates_every_card(chat_fakes, posted_gate, reviewer):
    response = reviewer.client().post(
        f"/api/automations/v2/runs/{posted_gate.run.run_id}/gate",
        {"decision": "approve", "approval_request_id": posted_gate.pk},
        format="json",
    )
    assert response.status_code == 200, response.json()
    updated = wait_updated(posted_gate)
    assert {m.rendered_outcome for m in updated.values()} == {"approve"}
    assert_cards_show(chat_fakes, posted_gate, rf"Approved by Rita Reviewer via the API {WHEN}")


def test_decision_on_the_approval_page_updates_every_card(chat_fakes, posted_gate, reviewer):
    gate_decide(
        actor=actor_for(reviewer),
        run=posted_gate.run,
        decision="rework",
        reason="Totals are wrong",
        source="page",
    )
    wait_updated(posted_gate)
    assert_cards_show(
        chat_fakes,
        posted_gate,
        rf"Sent back for rework by Rita Reviewer via the approval page {WHEN}",
    )
    assert "Reason: Totals are wrong" in shown(chat_fakes, posted_gate)["telegram"]["text"]


def test_a_decision_posted_on_the_approval_page_updates_the_slack_card(
    chat_fakes, posted_gate, reviewer
):
    """The whole path of the page: its form POST, the decision service, the hook after commit
    and the worker editing the card."""
    browser = Client()
    browser.force_login(reviewer.user)
    response = browser.post(
        f"/approvals/{posted_gate.pk}/",
        {"approval_request_id": posted_gate.pk, "decision": "approve", "reason": "Looks right"},
    )
    assert response.status_code in (200, 302)
    assert GateDecision.objects.get(gate=posted_gate, settles=True).source == "page"
    wait_updated(posted_gate)
    assert_cards_show(
        chat_fakes, posted_gate, rf"Approved by Rita Reviewer via the approval page {WHEN}"
    )


def test_running_the_update_again_changes_nothing(chat_fakes, posted_gate, reviewer, worker):
    gate_decide(actor=actor_for(reviewer), run=posted_gate.run, decision="cancel", source="page")
    before = {
        m.pk: (m.rendered_outcome, m.reply_id, m.attempts)
        for m in wait_updated(posted_gate).values()
    }
    requests = [len(fake.requests) for fake in chat_fakes.fakes.all]

    # In this process, and through the worker (the hook's task sent again).
    for message in cards(posted_gate).values():
        delivery.card_sync(message_pk=message.pk)
    tasks.update_cards.delay(posted_gate.pk)
    tasks.post_cards.delay(posted_gate.pk, "card")
    time.sleep(2)

    assert [len(fake.requests) for fake in chat_fakes.fakes.all] == requests
    after = {
        m.pk: (m.rendered_outcome, m.reply_id, m.attempts) for m in cards(posted_gate).values()
    }
    assert after == before


def test_expiry_updates_every_card(chat_fakes, posted_gate):
    Gate.objects.filter(pk=posted_gate.pk).update(expires_at=timezone.now())
    assert sweep_gates() == {posted_gate.pk: "expired"}
    updated = wait_updated(posted_gate)
    assert {m.rendered_outcome for m in updated.values()} == {"expired"}
    assert_cards_show(chat_fakes, posted_gate, r"Expired at .* no decision was made")


def test_rate_limited_update_is_retried_after_retry_after(chat_fakes, posted_gate, reviewer):
    chat_fakes.slack.fail_next(2, status=429, retry_after=1, call="chat.update")
    gate_decide(actor=actor_for(reviewer), run=posted_gate.run, decision="approve", source="page")
    wait_updated(posted_gate)
    calls = chat_fakes.slack.calls("chat.update")
    assert len(calls) == 3
    assert calls[1].at - calls[0].at >= 0.9 and calls[2].at - calls[1].at >= 0.9
    assert_cards_show(chat_fakes, posted_gate, "Approved by Rita Reviewer via the approval page")


def test_a_platform_returning_500_for_a_while_gets_the_update_once_it_recovers(
    chat_fakes, posted_gate, reviewer
):
    chat_fakes.discord.fail_next(3, status=500, call="edit_message")
    chat_fakes.telegram.fail_next(2, status=503, call="sendMessage")  # the thread reply
    gate_decide(actor=actor_for(reviewer), run=posted_gate.run, decision="approve", source="page")
    updated = wait_updated(posted_gate)
    assert len(chat_fakes.discord.calls("edit_message")) == 4
    assert len(chat_fakes.telegram.calls("editMessageText")) == 1  # not re-done by the retries
    assert updated["telegram"].last_error.startswith("reply:")
    assert_cards_show(chat_fakes, posted_gate, "Approved by Rita Reviewer via the approval page")


def test_one_failing_card_does_not_stop_the_others(chat_fakes, posted_gate, reviewer):
    chat_fakes.slack.fail_next(50, status=500, call="chat.update")  # down past every retry
    gate_decide(actor=actor_for(reviewer), run=posted_gate.run, decision="approve", source="page")

    def others_done():
        found = cards(posted_gate, MessageState.UPDATED)
        return set(found) == {"discord", "telegram"} and all(m.reply_id for m in found.values())

    wait_for(others_done)
    failed = wait_for(lambda: cards(posted_gate, MessageState.FAILED).get("slack"), timeout=30)
    assert failed.rendered_outcome == "" and failed.reply_id == ""
    assert "500" in failed.last_error


def test_a_lost_update_task_is_sent_again_by_the_beat_sweep(
    chat_fakes, posted_gate, reviewer, monkeypatch
):
    monkeypatch.setattr("channels.receivers._enqueue", lambda *args: None)  # enqueue lost
    gate_decide(actor=actor_for(reviewer), run=posted_gate.run, decision="approve", source="page")
    tasks.sync_overdue_cards()
    time.sleep(1)
    assert chat_fakes.slack.calls("chat.update") == []  # too recent: a retry may still be due

    ApprovalMessage.objects.filter(gate=posted_gate).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    tasks.sync_overdue_cards()
    wait_updated(posted_gate)
    assert_cards_show(chat_fakes, posted_gate, "Approved by Rita Reviewer via the approval page")
    assert delivery.cards_overdue(now=timezone.now() + timedelta(days=1)) == []


def test_cancelling_the_run_supersedes_the_gate_and_its_cards_lose_their_buttons(
    chat_fakes, posted_gate, operator
):
    response = operator.client().post(
        f"/api/automations/v2/runs/{posted_gate.run.run_id}/cancel",
        {"reason": "no longer wanted"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    updated = wait_updated(posted_gate)
    assert {m.rendered_outcome for m in updated.values()} == {"superseded"}
    assert_cards_show(chat_fakes, posted_gate, r"No longer needed")
