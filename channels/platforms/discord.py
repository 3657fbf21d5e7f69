"""Discord through its HTTP API (`FLOWGATE_DISCORD_API_URL`, default v10) with the bot token."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from channels.platforms import PostedMessage, http

USER_AGENT = "DiscordBot (https://github.com/flowgate/flowgate, 1)"


def _url(path: str) -> str:
    return settings.FLOWGATE_DISCORD_API_URL.rstrip("/") + path


def _headers(connection) -> dict[str, str]:
    return {"Authorization": f"Bot {connection.bot_token}", "User-Agent": USER_AGENT}


def post_message(
    connection, content: dict[str, Any], thread_id: str | None = None
) -> PostedMessage:
    """Create a message in the connection's channel; a reply to `thread_id` when given."""
    body = dict(content)
    if thread_id:
        body["message_reference"] = {"message_id": thread_id, "fail_if_not_exists": False}
    _, message = http.call(
        "POST",
        _url(f"/channels/{connection.channel_id}/messages"),
        json=body,
        headers=_headers(connection),
    )
    message_id = str(message["id"])
    return PostedMessage(message_id=message_id, thread_id=thread_id or message_id)


def edit_message(connection, message_id: str, content: dict[str, Any]) -> None:
    """Edit a message of the connection's channel (content, embeds and components replaced)."""
    http.call(
        "PATCH",
        _url(f"/channels/{connection.channel_id}/messages/{message_id}"),
        json=content,
        headers=_headers(connection),
    )
