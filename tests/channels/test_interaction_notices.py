"""Answering chat users within the platforms' time limits (channels/notices.py): the interaction
request answers at once, and what the user is told arrives afterwards through a real Celery
worker, retried like a card; only Slack's `views.open` stays in the request, with a short
timeout and a fallback message."""

from __future__ import annotations

import time

import pytest

from tests.factories import gate_for, link
from tests.support.interactions import (
    SLACK_TEAM,
    decisions,
    slack_click,
    slack_post,
    telegram_post,
    telegram_press,
)
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]

SLACK_WINDOW_S = 3.0  # Slack shows the user an error when an interaction takes longer


@pytest.fixture
def worker(celery_worker_factory, chat_fakes):
    return celery_worker_factory(env=chat_fakes.env)


@pytest.fixture
def gate(operator):
    return gate_for(operator)


@pytest.fixture
def on_slack(chat_fakes, gate, reviewer):
    """The gate's workspace posts to Slack, where its reviewer is U0RITA."""
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)


def answered(fake, call: str) -> list:
    """The requests of `call` the fake has answered with success."""
    return [r for r in fake.calls(call) if r.status == 200]


def timed(send) -> tuple[object, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def test_a_slow_slack_does_not_hold_up_the_answer_the_ephemeral_arrives_later(
    chat_fakes, worker, gate, on_slack
):
    chat_fakes.slack.delay_next(1, seconds=4, call="chat.postEphemeral")

    response, took = timed(lambda: slack_post(slack_click(gate.pk, "approve")))

    assert response.status_code == 200
    assert took < SLACK_WINDOW_S / 2
    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]
    [told] = wait_for(lambda: answered(chat_fakes.slack, "chat.postEphemeral"), timeout=15)
    assert (told.body["channel"], told.body["user"]) == ("C0FLOWGATE", "U0RITA")
    assert told.body["text"].startswith("Approved: ")


def test_a_rate_limited_ephemeral_is_retried_after_retry_after(chat_fakes, worker, gate, on_slack):
    chat_fakes.slack.fail_next(1, status=429, retry_after=1, call="chat.postEphemeral")

    assert slack_post(slack_click(gate.pk, "cancel")).status_code == 200

    [told] = wait_for(lambda: answered(chat_fakes.slack, "chat.postEphemeral"), timeout=15)
    first, retry = chat_fakes.slack.calls("chat.postEphemeral")
    assert first.status == 429 and retry is told
    assert retry.at - first.at >= 1.0
    assert told.body["text"].startswith("Cancelled: ")


def test_a_slow_views_open_gives_up_in_time_and_says_so(
    chat_fakes, worker, gate, on_slack, settings
):
    settings.FLOWGATE_SLACK_MODAL_TIMEOUT_S = 0.5
    chat_fakes.slack.delay_next(1, seconds=2, call="views.open")

    response, took = timed(lambda: slack_post(slack_click(gate.pk, "rework")))

    assert response.status_code == 200
    assert took < SLACK_WINDOW_S / 2
    assert len(chat_fakes.slack.calls("views.open")) == 1  # tried in the request
    [told] = wait_for(lambda: answered(chat_fakes.slack, "chat.postEphemeral"), timeout=15)
    assert told.body["text"] == (
        "The rework form could not be opened in time, so nothing was decided: press Rework again."
    )
    assert decisions(gate) == []


def test_a_slow_telegram_does_not_hold_up_the_webhook_and_the_prompt_comes_later(
    chat_fakes, worker, gate, reviewer
):
    """A rework press: the force-reply prompt, then the callback's answer, both from the
    worker; the webhook answered at once."""
    chat_fakes.connect(gate.workspace, kinds=["telegram"])
    link(reviewer, "telegram", "5000001")
    chat_fakes.telegram.delay_next(1, seconds=3, call="sendMessage")

    response, took = timed(lambda: telegram_post(telegram_press(gate.pk, "rework")))

    assert response.status_code == 200
    assert took < 1.5
    [answer] = wait_for(lambda: answered(chat_fakes.telegram, "answerCallbackQuery"), timeout=15)
    [prompt] = answered(chat_fakes.telegram, "sendMessage")
    assert prompt.body["reply_markup"]["force_reply"] is True
    assert prompt.body["text"].endswith(f"fg:rework:{gate.pk}")
    assert prompt.at < answer.at  # asked first, then the button is answered
    assert answer.body == {
        "callback_query_id": "cbq-1",
        "text": "Reply to my message with the reason for rework.",
    }
