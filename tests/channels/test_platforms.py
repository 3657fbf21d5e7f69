"""The platform clients against the local stand-ins: what each call sends, what it returns, and
how every failure becomes one `PlatformError` (retryable or not, with Retry-After)."""

from __future__ import annotations

import socket

import httpx
import pytest

from channels.models import ChannelConnection
from channels.platforms import PlatformError, discord, module_for, slack, telegram


def connection(kind: str, **fields) -> ChannelConnection:
    values = {
        "slack": {"channel_id": "C0FLOWGATE", "bot_token": "xoxb-test-token"},
        "discord": {"channel_id": "1100000000000000001", "bot_token": "discord-bot-token"},
        "telegram": {"channel_id": "-1001234567890", "bot_token": "123456:tg-token"},
    }[kind]
    return ChannelConnection(kind=kind, name=kind, **{**values, **fields})


def test_module_for_each_kind_and_refuses_others():
    assert module_for("slack") is slack
    assert module_for("discord") is discord
    assert module_for("telegram") is telegram
    with pytest.raises(PlatformError):
        module_for("irc")


# --- Slack ----------------------------------------------------------------------------------


def test_slack_post_and_edit(chat_fakes):
    conn = connection("slack")
    posted = slack.post_message(conn, {"text": "hello", "blocks": [{"type": "divider"}]})
    assert posted.message_id == posted.thread_id
    (request,) = chat_fakes.slack.calls("chat.postMessage")
    assert request.headers["Authorization"] == "Bearer xoxb-test-token"
    assert request.body["channel"] == "C0FLOWGATE"
    assert request.body["blocks"] == [{"type": "divider"}]

    slack.edit_message(conn, posted.message_id, {"text": "edited", "blocks": []})
    assert chat_fakes.slack.messages[("C0FLOWGATE", posted.message_id)]["text"] == "edited"

    reply = slack.post_message(conn, {"text": "in thread"}, thread_id=posted.message_id)
    assert reply.thread_id == posted.message_id
    assert chat_fakes.slack.calls("chat.postMessage")[-1].body["thread_ts"] == posted.message_id


def test_slack_open_modal_and_post_ephemeral(chat_fakes):
    conn = connection("slack")
    view = {
        "type": "modal",
        "callback_id": "fg_rework",
        "title": {"type": "plain_text", "text": "x"},
    }
    assert slack.open_modal(conn, "trigger-1", view) is None
    (opened,) = chat_fakes.slack.calls("views.open")
    assert opened.body == {"trigger_id": "trigger-1", "view": view}

    assert slack.post_ephemeral(conn, "C0FLOWGATE", "U123", "Not linked") is None
    (ephemeral,) = chat_fakes.slack.calls("chat.postEphemeral")
    assert ephemeral.body == {"channel": "C0FLOWGATE", "user": "U123", "text": "Not linked"}


def test_slack_rate_limit_is_retryable_with_retry_after(chat_fakes):
    chat_fakes.slack.fail_next(1, status=429, retry_after=3)
    with pytest.raises(PlatformError) as caught:
        slack.post_message(connection("slack"), {"text": "x"})
    assert (caught.value.status, caught.value.retry_after, caught.value.retryable) == (429, 3, True)


def test_slack_server_error_is_retryable(chat_fakes):
    chat_fakes.slack.fail_next(1, status=500)
    with pytest.raises(PlatformError) as caught:
        slack.edit_message(connection("slack"), "1.2", {"text": "x"})
    assert (caught.value.status, caught.value.retryable) == (500, True)


def test_slack_api_refusal_is_final(chat_fakes):
    with pytest.raises(PlatformError) as caught:
        slack.edit_message(connection("slack"), "999.999", {"text": "x"})
    assert caught.value.retryable is False
    assert "message_not_found" in str(caught.value)


# --- Discord --------------------------------------------------------------------------------


def test_discord_post_reply_and_edit(chat_fakes):
    conn = connection("discord")
    posted = discord.post_message(conn, {"content": "card", "components": [{"type": 1}]})
    (request,) = chat_fakes.discord.calls("create_message")
    assert request.path == "/api/v10/channels/1100000000000000001/messages"
    assert request.headers["Authorization"] == "Bot discord-bot-token"
    assert request.headers["User-Agent"].startswith("DiscordBot (")

    reply = discord.post_message(conn, {"content": "reply"}, thread_id=posted.message_id)
    assert reply.thread_id == posted.message_id
    assert chat_fakes.discord.calls("create_message")[-1].body["message_reference"] == {
        "message_id": posted.message_id,
        "fail_if_not_exists": False,
    }

    discord.edit_message(conn, posted.message_id, {"content": "decided", "components": []})
    shown = chat_fakes.discord.messages[("1100000000000000001", posted.message_id)]
    assert (shown["content"], shown["components"]) == ("decided", [])


def test_discord_rate_limit_and_unknown_message(chat_fakes):
    chat_fakes.discord.fail_next(1, status=429, retry_after=2.5)
    with pytest.raises(PlatformError) as caught:
        discord.post_message(connection("discord"), {"content": "x"})
    assert (caught.value.status, caught.value.retry_after, caught.value.retryable) == (
        429,
        2.5,
        True,
    )

    with pytest.raises(PlatformError) as caught:
        discord.edit_message(connection("discord"), "42", {"content": "x"})
    assert (caught.value.status, caught.value.retryable) == (404, False)


# --- Telegram -------------------------------------------------------------------------------


def test_telegram_post_reply_edit(chat_fakes):
    conn = connection("telegram")
    keyboard = {"inline_keyboard": [[{"text": "Approve", "callback_data": "fg:approve:g"}]]}
    posted = telegram.post_message(conn, {"text": "card", "reply_markup": keyboard})
    (request,) = chat_fakes.telegram.calls("sendMessage")
    assert request.path == "/bot123456:tg-token/sendMessage"
    assert request.body["chat_id"] == "-1001234567890"

    telegram.post_message(conn, {"text": "reply"}, thread_id=posted.message_id)
    assert chat_fakes.telegram.calls("sendMessage")[-1].body["reply_parameters"][
        "message_id"
    ] == int(posted.message_id)

    telegram.edit_message(conn, posted.message_id, {"text": "decided"})
    shown = chat_fakes.telegram.messages[("-1001234567890", posted.message_id)]
    assert shown["text"] == "decided" and "reply_markup" not in shown
    # Telegram refuses an edit that changes nothing; for us that is done, not an error.
    telegram.edit_message(conn, posted.message_id, {"text": "decided"})


def test_telegram_force_reply_and_answer_callback(chat_fakes):
    conn = connection("telegram")
    message_id = telegram.send_force_reply(conn, "-100777", "What should change?", 55)
    (request,) = chat_fakes.telegram.calls("sendMessage")
    assert isinstance(message_id, int)
    assert request.body["chat_id"] == "-100777"
    assert request.body["reply_markup"] == {"force_reply": True, "selective": True}
    assert request.body["reply_parameters"]["message_id"] == 55

    assert telegram.answer_callback_query(conn, "cbq-1", "Approved") is None
    (answered,) = chat_fakes.telegram.calls("answerCallbackQuery")
    assert answered.body == {"callback_query_id": "cbq-1", "text": "Approved"}


def test_telegram_rate_limit_server_error_and_token_hidden(chat_fakes):
    chat_fakes.telegram.fail_next(1, status=429, retry_after=4)
    chat_fakes.telegram.fail_next(1, status=502)
    conn = connection("telegram")
    with pytest.raises(PlatformError) as limited:
        telegram.post_message(conn, {"text": "x"})
    assert (limited.value.status, limited.value.retry_after, limited.value.retryable) == (
        429,
        4,
        True,
    )
    with pytest.raises(PlatformError) as broken:
        telegram.post_message(conn, {"text": "x"})
    assert (broken.value.status, broken.value.retryable) == (502, True)
    assert "tg-token" not in str(broken.value)


def test_unreachable_platform_is_retryable(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.FLOWGATE_TELEGRAM_API_URL = f"http://127.0.0.1:{port}"
    settings.FLOWGATE_SLACK_API_URL = f"http://127.0.0.1:{port}/api/"
    for module in (telegram, slack):
        with pytest.raises(PlatformError) as caught:
            module.post_message(connection(module.__name__.rsplit(".", 1)[1]), {"text": "x"})
        assert (caught.value.status, caught.value.retryable) == (0, True)


def test_the_fake_telegram_bot_id_is_its_tokens_numeric_prefix(chat_fakes):
    """As on Telegram (`getMe`, the `from` of the bot's messages), which the webhook's reply
    check relies on."""
    posted = telegram.post_message(connection("telegram", bot_token="424242:abc"), {"text": "hi"})
    [sent] = chat_fakes.telegram.calls("sendMessage")
    assert sent.response["result"]["from"]["id"] == 424242
    assert posted.message_id == str(sent.response["result"]["message_id"])
    me = httpx.post(f"{chat_fakes.telegram.url}/bot424242:abc/getMe").json()
    assert me["result"]["id"] == 424242
