"""Telegram through the Bot API (`FLOWGATE_TELEGRAM_API_URL/bot<token>/<method>`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from channels.platforms import PlatformError, PostedMessage, http

NOT_MODIFIED = "message is not modified"


def _call(connection, method: str, body: dict[str, Any]) -> Any:
    url = f"{settings.FLOWGATE_TELEGRAM_API_URL.rstrip('/')}/bot{connection.bot_token}/{method}"
    _, answer = http.call("POST", url, json=body, headers={})
    if not isinstance(answer, dict) or not answer.get("ok"):
        raise PlatformError(f"telegram {method}: {answer!r}"[:300], status=200)
    return answer.get("result")


def _reply_to(message_id: str | int | None) -> dict[str, Any]:
    if not message_id:
        return {}
    return {
        "reply_parameters": {"message_id": int(message_id), "allow_sending_without_reply": True}
    }


def post_message(
    connection, content: dict[str, Any], thread_id: str | None = None
) -> PostedMessage:
    """`sendMessage` to the connection's chat; a reply to message `thread_id` when given."""
    result = _call(
        connection,
        "sendMessage",
        {"chat_id": connection.channel_id, **content, **_reply_to(thread_id)},
    )
    message_id = str(result["message_id"])
    return PostedMessage(message_id=message_id, thread_id=thread_id or message_id)


def edit_message(connection, message_id: str, content: dict[str, Any]) -> None:
    """`editMessageText`; without `reply_markup` in `content` the inline keyboard goes away.
    Telegram refuses an edit that changes nothing ("message is not modified"): that is success."""
    try:
        _call(
            connection,
            "editMessageText",
            {"chat_id": connection.channel_id, "message_id": int(message_id), **content},
        )
    except PlatformError as exc:
        if exc.status == 400 and NOT_MODIFIED in str(exc):
            return
        raise


def send_force_reply(
    connection, chat_id: str, text: str, reply_to_message_id: int | None = None
) -> int:
    """`sendMessage` asking the user to reply (force_reply); returns the prompt's message id."""
    result = _call(
        connection,
        "sendMessage",
        {
            "chat_id": chat_id,
            "text": text,
            "reply_markup": {"force_reply": True, "selective": True},
            **_reply_to(reply_to_message_id),
        },
    )
    return int(result["message_id"])


def answer_callback_query(connection, callback_query_id: str, text: str) -> None:
    """`answerCallbackQuery`: stop the button's spinner and show `text` to the user who clicked."""
    _call(connection, "answerCallbackQuery", {"callback_query_id": callback_query_id, "text": text})
