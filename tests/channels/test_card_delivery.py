"""Posting cards (channels/delivery.py, channels/tasks.py) through a real Celery worker to the
local Slack, Discord and Telegram stand-ins: one card per active connection when a gate opens,
re-posts for reminders and escalations, retries after 429 and 5xx, isolation between cards."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.expiry import sweep_gates
from approvals.models import Gate
from channels import delivery, tasks
from channels.actions import decode_action
from channels.models import ApprovalMessage, MessageState
from governance.models import Role
from tests.factories import actor_for, card_gate
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]

FAST_RETRIES = {"FLOWGATE_CHAT_RETRY_BACKOFF_S": "0.2", "FLOWGATE_CHAT_MAX_RETRIES": "5"}


@pytest.fixture
def worker(celery_worker_factory, chat_fakes):
    return celery_worker_factory(env={**chat_fakes.env, **FAST_RETRIES})


def messages(gate, purpose="card", state=MessageState.POSTED):
    rows = list(ApprovalMessage.objects.filter(gate=gate, purpose=purpose, state=state))
    return {m.connection.kind: m for m in rows}


def wait_posted(gate, n=3, purpose="card", timeout=20):
    return wait_for(
        lambda: len(found := messages(gate, purpose)) == n and found,
        timeout=timeout,
        message=f"{n} {purpose} cards posted",
    )


def test_gate_open_posts_one_card_per_platform_with_its_buttons(chat_fakes, worker, operator):
    chat_fakes.connect(operator.workspace)
    gate = card_gate(operator, decisions=("approve", "cancel"))
    posted = wait_posted(gate)

    (slack,) = chat_fakes.slack.calls("chat.postMessage")
    assert slack.body["channel"] == "C0FLOWGATE"
    assert slack.headers["Authorization"] == "Bearer xoxb-test-token"
    (actions,) = [b for b in slack.body["blocks"] if b["type"] == "actions"]
    assert [decode_action(e["value"]) for e in actions["elements"]] == [
        decode_action(f"fg:approve:{gate.pk}"),
        decode_action(f"fg:cancel:{gate.pk}"),
    ]
    assert posted["slack"].message_id == slack_ts(chat_fakes)
    assert posted["slack"].thread_id == posted["slack"].message_id
    assert posted["slack"].recipient == "C0FLOWGATE"

    (discord,) = chat_fakes.discord.calls("create_message")
    assert [c["custom_id"] for c in discord.body["components"][0]["components"]] == [
        f"fg:approve:{gate.pk}",
        f"fg:cancel:{gate.pk}",
    ]
    assert discord.body["embeds"][0]["title"] == "Weekly-Report: Approve the weekly report"
    assert ("1100000000000000001", posted["discord"].message_id) in chat_fakes.discord.messages

    (telegram,) = chat_fakes.telegram.calls("sendMessage")
    keyboard = telegram.body["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in keyboard for b in row] == [
        f"fg:approve:{gate.pk}",
        f"fg:cancel:{gate.pk}",
    ]
    assert ("-1001234567890", posted["telegram"].message_id) in chat_fakes.telegram.messages


def slack_ts(chat_fakes) -> str:
    ((_, ts),) = chat_fakes.slack.messages
    return ts


def test_only_active_connections_of_the_gates_workspace_get_cards(
    chat_fakes, worker, operator, make_member
):
    connections = chat_fakes.connect(operator.workspace)
    connections["discord"].is_active = False
    connections["discord"].save(update_fields=["is_active"])
    other = make_member("globex/ops", "gus", role=Role.OPERATOR)
    chat_fakes.connect(other.workspace, kinds=("telegram",))
    gate = card_gate(operator)
    posted = wait_posted(gate, n=2)
    assert set(posted) == {"slack", "telegram"}
    time.sleep(0.5)  # nothing else arrives
    assert len(chat_fakes.telegram.calls("sendMessage")) == 1
    assert chat_fakes.discord.requests == []


def test_slack_rate_limit_is_retried_after_retry_after(chat_fakes, worker, operator):
    chat_fakes.connect(operator.workspace, kinds=("slack",))
    chat_fakes.slack.fail_next(1, status=429, retry_after=1, call="chat.postMessage")
    gate = card_gate(operator)
    posted = wait_posted(gate, n=1)
    first, second = chat_fakes.slack.calls("chat.postMessage")
    assert second.at - first.at >= 0.9  # waited for Retry-After, not the 0.2 s backoff
    assert posted["slack"].attempts == 2
    assert len(chat_fakes.slack.messages) == 1  # the 429 posted nothing


def test_one_failing_connection_does_not_stop_the_others(chat_fakes, worker, operator):
    chat_fakes.connect(operator.workspace)
    chat_fakes.discord.fail_next(50, status=403, call="create_message")  # Missing Access: final
    chat_fakes.telegram.fail_next(2, status=502, call="sendMessage")  # down for a moment
    gate = card_gate(operator)
    posted = wait_posted(gate, n=2)
    assert set(posted) == {"slack", "telegram"}
    assert posted["telegram"].attempts == 3
    failed = wait_for(lambda: messages(gate, state=MessageState.FAILED).get("discord"))
    assert "403" in failed.last_error
    assert len(chat_fakes.discord.calls("create_message")) == 1  # a final error is not retried


def test_a_platform_down_for_longer_than_the_retries_marks_the_card_failed(
    chat_fakes, worker, operator
):
    chat_fakes.connect(operator.workspace, kinds=("telegram",))
    chat_fakes.telegram.fail_next(100, status=500, call="sendMessage")
    gate = card_gate(operator)
    failed = wait_for(lambda: messages(gate, state=MessageState.FAILED).get("telegram"), timeout=30)
    assert failed.attempts == 6  # the first try and FLOWGATE_CHAT_MAX_RETRIES=5 retries
    assert "500" in failed.last_error


def test_a_reminder_reposts_the_card(chat_fakes, worker, operator):
    chat_fakes.connect(operator.workspace)
    gate = card_gate(operator, expiry={"expires_after_s": 3600, "remind_every_s": 60})
    wait_posted(gate)
    Gate.objects.filter(pk=gate.pk).update(requested_at=timezone.now() - timedelta(seconds=61))
    assert sweep_gates() == {gate.pk: "reminded"}
    reminders = wait_posted(gate, purpose="reminder:1")
    assert reminders["slack"].message_id != messages(gate)["slack"].message_id
    slack_reminder = chat_fakes.slack.calls("chat.postMessage")[-1].body
    assert "Reminder 1: still waiting for a decision" in str(slack_reminder["blocks"])
    assert any(b["type"] == "actions" for b in slack_reminder["blocks"])  # still decidable
    assert "Reminder 1" in chat_fakes.telegram.calls("sendMessage")[-1].body["text"]
    assert len(chat_fakes.discord.calls("create_message")) == 2


def test_escalation_reposts_the_card_naming_the_new_reviewers(
    chat_fakes, worker, operator, reviewer
):
    chat_fakes.connect(operator.workspace, kinds=("slack",))
    gate = card_gate(
        operator,
        expiry={
            "expires_after_s": 3600,
            "on_expiry": "escalate",
            "escalate_to": [reviewer.user.username],
        },
    )
    wait_posted(gate, n=1)
    Gate.objects.filter(pk=gate.pk).update(expires_at=timezone.now())
    assert sweep_gates() == {gate.pk: "escalated"}
    wait_posted(gate, n=1, purpose="escalation")
    body = chat_fakes.slack.calls("chat.postMessage")[-1].body
    assert "Escalated to rita-reviewer: they can now decide" in str(body["blocks"])


def test_a_gate_decided_before_its_card_could_be_posted_gets_no_open_card(
    chat_fakes, worker, operator, reviewer
):
    from approvals.decisions import gate_decide

    chat_fakes.connect(operator.workspace, kinds=("slack",))
    chat_fakes.slack.fail_next(1, status=429, retry_after=1, call="chat.postMessage")
    gate = card_gate(operator)
    wait_for(lambda: chat_fakes.slack.calls("chat.postMessage"))  # the 429 came back
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="approve", source="page")
    skipped = wait_for(lambda: messages(gate, state=MessageState.SKIPPED).get("slack"))
    assert skipped.message_id == ""
    time.sleep(1.5)  # past the Retry-After: the retry found the gate closed
    assert len(chat_fakes.slack.calls("chat.postMessage")) == 1
    assert chat_fakes.slack.messages == {}


def test_a_gate_whose_card_task_was_lost_gets_its_cards_from_the_beat_sweep(
    chat_fakes, worker, operator, monkeypatch
):
    """The broker was down when the gate opened: no card rows exist, so only the sweep can
    post them — once the gate is older than the grace period, and only once."""
    monkeypatch.setattr("channels.receivers._enqueue", lambda *args: None)  # enqueue lost
    chat_fakes.connect(operator.workspace)
    gate = card_gate(operator)
    recent = card_gate(operator, automation_id="daily-report")  # its task may still come
    closed = card_gate(operator, automation_id="monthly-report")
    Gate.objects.filter(pk=closed.pk).update(status="cancelled")
    Gate.objects.exclude(pk=recent.pk).update(
        requested_at=timezone.now() - timedelta(seconds=delivery.MISSING_GRACE_S + 1)
    )

    tasks.sync_overdue_cards()
    tasks.sync_overdue_cards()  # a second sweep while the first one's cards are on their way

    wait_posted(gate)
    time.sleep(1)
    assert card_posts(chat_fakes) == [1, 1, 1]  # one card per platform
    assert ApprovalMessage.objects.exclude(gate=gate).count() == 0
    tasks.sync_overdue_cards()  # nothing is missing now
    time.sleep(0.5)
    assert card_posts(chat_fakes) == [1, 1, 1]
    assert ApprovalMessage.objects.count() == 3


def card_posts(chat_fakes) -> list[int]:
    return [
        len(chat_fakes.slack.calls("chat.postMessage")),
        len(chat_fakes.discord.calls("create_message")),
        len(chat_fakes.telegram.calls("sendMessage")),
    ]


def test_the_missing_card_sweep_is_bounded_and_costs_constant_queries(
    chat_fakes, operator, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr("channels.receivers._enqueue", lambda *args: None)
    chat_fakes.connect(operator.workspace)
    gates = [card_gate(operator, automation_id=f"report-{n}") for n in range(4)]
    Gate.objects.update(requested_at=timezone.now() - timedelta(hours=1))
    monkeypatch.setattr(delivery, "OVERDUE_BATCH", 3)

    # gates, connections, the rows' INSERT (in BEGIN/COMMIT), their ids: however many gates
    with django_assert_max_num_queries(6):
        first = delivery.cards_missing(now=timezone.now())
    assert len(first) == 9  # three gates, three connections each
    with django_assert_max_num_queries(6):
        second = delivery.cards_missing(now=timezone.now())
    assert len(second) == 3  # the fourth gate
    rows = ApprovalMessage.objects.filter(pk__in=[*first, *second], purpose="card")
    assert sorted(rows.values_list("gate", flat=True).distinct()) == sorted(g.pk for g in gates)
    assert ApprovalMessage.objects.count() == 12
    assert delivery.cards_missing(now=timezone.now()) == []
