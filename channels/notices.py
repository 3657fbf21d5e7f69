"""Telling one chat user something after their click was answered: a Celery task, not the request.

Slack wants an interaction answered within 3 seconds and Telegram redelivers a webhook update that
is not answered in time, so the interaction handlers make no platform call that can wait until
after their HTTP response: the outcome of a click (Slack `chat.postEphemeral`, Telegram
`answerCallbackQuery`) and Telegram's rework prompt (`sendMessage` with a force-reply) become a
`Notice`, enqueued after the decision commits and sent by `channels.send_notice`, retried like a
card (`Deferred`: the platform's Retry-After, else the doubling backoff, at most
`FLOWGATE_CHAT_MAX_RETRIES` times). Only Slack's `views.open` stays in the request (its trigger id
lapses in 3 seconds), with its own short timeout, and Discord's answers, which are the HTTP
response itself.

A notice may name what to send after it (`then`) and instead of it when it fails for good
(`otherwise`): Telegram's rework prompt is answered "reply to my message" once it was sent, and
"the rework form could not be opened" when it could not be.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

from channels.cards import slack_text
from channels.delivery import Deferred, backoff
from channels.models import ChannelConnection
from channels.platforms import PlatformError
from channels.platforms import slack as slack_api
from channels.platforms import telegram as telegram_api

logger = logging.getLogger(__name__)

CALLS = {
    "slack.post_ephemeral": slack_api.post_ephemeral,
    "telegram.answer_callback_query": telegram_api.answer_callback_query,
    "telegram.send_force_reply": telegram_api.send_force_reply,
}


@dataclass(frozen=True)
class Notice:
    """One platform call (`call`, a key of `CALLS`, with keyword `args`) through a connection."""

    connection_id: int
    call: str
    args: dict[str, Any]
    then: Notice | None = None
    otherwise: Notice | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "call": self.call,
            "args": self.args,
            "then": self.then.as_json() if self.then else None,
            "otherwise": self.otherwise.as_json() if self.otherwise else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notice:
        return cls(
            connection_id=data["connection_id"],
            call=data["call"],
            args=data["args"],
            then=cls.from_json(data["then"]) if data.get("then") else None,
            otherwise=cls.from_json(data["otherwise"]) if data.get("otherwise") else None,
        )


def slack_ephemeral(connection: ChannelConnection, channel: str, user: str, text: str) -> Notice:
    return Notice(
        connection.pk,
        "slack.post_ephemeral",
        {"channel": channel, "user": user, "text": slack_text(text)},
    )


def telegram_answer(connection: ChannelConnection, query_id: str, text: str) -> Notice:
    return Notice(
        connection.pk,
        "telegram.answer_callback_query",
        {"callback_query_id": query_id, "text": text},
    )


def send_after_commit(notice: Notice) -> None:
    """Enqueue `notice` once the caller's transaction commits (at once outside one)."""
    transaction.on_commit(partial(_enqueue, notice), robust=True)


def _enqueue(notice: Notice) -> None:
    from channels import tasks  # which imports this module

    try:
        tasks.send_notice.delay(notice.as_json())
    except Exception:  # the decision is committed; this message is what we lose
        logger.exception("could not enqueue chat notice %s", notice.call)


def notice_send(data: dict[str, Any], *, attempt: int) -> None:
    """Make the notice's call; raise `Deferred` to be tried again later. Then enqueue its `then`
    (sent) or `otherwise` (failed for good). A deactivated or deleted connection sends nothing."""
    notice = Notice.from_json(data)
    connection = ChannelConnection.objects.filter(pk=notice.connection_id, is_active=True).first()
    if connection is None:
        return
    try:
        CALLS[notice.call](connection, **notice.args)
    except PlatformError as exc:
        if exc.retryable and attempt < settings.FLOWGATE_CHAT_MAX_RETRIES:
            countdown = exc.retry_after if exc.retry_after is not None else backoff(attempt)
            raise Deferred(countdown, str(exc)) from exc
        logger.warning("chat notice %s failed for good: %s", notice.call, exc)
        follow = notice.otherwise
    else:
        follow = notice.then
    if follow is not None:
        _enqueue(follow)
