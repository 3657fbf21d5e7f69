"""Slack through slack-sdk's `WebClient` (bot token of the connection, `FLOWGATE_SLACK_API_URL`).

slack-sdk answers HTTP errors and `{"ok": false}` alike with `SlackApiError`; `_calling` turns
every failure into a `PlatformError` (429 with its Retry-After, 5xx and `ratelimited` retryable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from channels.platforms import PlatformError, PostedMessage

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)


def client(connection, timeout: float | None = None) -> WebClient:
    """A client of the connection's bot; `timeout` (seconds) defaults to
    `FLOWGATE_CHAT_TIMEOUT_S`."""
    return WebClient(
        token=connection.bot_token,
        base_url=settings.FLOWGATE_SLACK_API_URL,
        timeout=timeout or settings.FLOWGATE_CHAT_TIMEOUT_S,
    )


@contextmanager
def _calling(method: str) -> Iterator[None]:
    try:
        yield
    except SlackApiError as exc:
        response = exc.response
        status = response.status_code
        error = response.get("error") if isinstance(response.data, dict) else None
        retry_after = None
        if status == 429:
            value = response.headers.get("Retry-After") or response.headers.get("retry-after")
            try:
                retry_after = float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                retry_after = None
        raise PlatformError(
            f"slack {method} answered {status}: {error or 'no error named'}",
            status=status,
            retry_after=retry_after,
            retryable=status == 429 or status >= 500 or error in RETRYABLE_ERRORS,
        ) from exc
    except (SlackClientError, OSError, ValueError) as exc:  # network errors, unparsable answers
        raise PlatformError(f"slack {method}: {exc}", retryable=True) from exc


def _call(
    connection, method: str, fn: Callable[[WebClient], Any], timeout: float | None = None
) -> Any:
    with _calling(method):
        return fn(client(connection, timeout))


def post_message(
    connection, content: dict[str, Any], thread_id: str | None = None
) -> PostedMessage:
    """`chat.postMessage` to the connection's channel; a reply when `thread_id` (a ts) is given."""
    extra = {"thread_ts": thread_id} if thread_id else {}
    response = _call(
        connection,
        "chat.postMessage",
        lambda c: c.chat_postMessage(channel=connection.channel_id, **content, **extra),
    )
    ts = str(response["ts"])
    return PostedMessage(message_id=ts, thread_id=thread_id or ts)


def edit_message(connection, message_id: str, content: dict[str, Any]) -> None:
    """`chat.update` of a message (ts) in the connection's channel."""
    _call(
        connection,
        "chat.update",
        lambda c: c.chat_update(channel=connection.channel_id, ts=message_id, **content),
    )


def open_modal(connection, trigger_id: str, view: dict) -> None:
    """`views.open`: show a modal to the user who clicked. Called inside the interaction request
    (the trigger id lapses after 3 seconds), so it gives up after
    `FLOWGATE_SLACK_MODAL_TIMEOUT_S`."""
    _call(
        connection,
        "views.open",
        lambda c: c.views_open(trigger_id=trigger_id, view=view),
        timeout=settings.FLOWGATE_SLACK_MODAL_TIMEOUT_S,
    )


def post_ephemeral(connection, channel: str, user: str, text: str) -> None:
    """`chat.postEphemeral`: a message only `user` sees in `channel`."""
    _call(
        connection,
        "chat.postEphemeral",
        lambda c: c.chat_postEphemeral(channel=channel, user=user, text=text),
    )
