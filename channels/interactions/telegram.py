"""`POST /channels/telegram/interactions`: the bot's webhook (button presses and replies).

Verification: the `X-Telegram-Bot-Api-Secret-Token` header equals the webhook secret of an
active Telegram connection (constant-time comparison; every connection is compared).
Delivery key: the bot id(s) of the verifying connections and the update's `update_id` (update
ids count per bot, so a bot token changed to another bot starts afresh), claimed per verifying
connection (channels/interactions/deciding.py): a connection naming our bot with another secret
cannot pre-claim our predictable update ids.

- `callback_query` on approve/cancel decides at once; the outcome is the callback's answer
  (`answerCallbackQuery`), which Telegram shows to the presser only, sent by a task after the
  response (channels/notices.py), as is the force-reply prompt below.
- A rework button sends a force-reply prompt whose text ends with the button's action value
  (`fg:rework:<gate id>`). The reply to it, from whoever answers, decides rework with the reply
  text as the reason. This keeps no state: a reply counts only when it answers a message sent
  by the bot of a verifying connection (the bot id is the part of its token before the colon)
  that carries an action value.
- The answer to a reply, and the link for an unlinked account, go back in the webhook response
  (Telegram runs a method returned there: `sendMessage`), the link to the user's private chat
  with the bot so nobody else in the group sees it.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from channels.actions import CardAction, decode_action
from channels.interactions import words
from channels.interactions.deciding import Answer, chat_decide, chat_form_prompt
from channels.interactions.http import dig, ignored, json_object, unverified
from channels.linking import ChatAccount
from channels.models import ChannelConnection, ChannelKind
from channels.notices import Notice, send_after_commit, telegram_answer

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CALLBACK_TEXT = 200  # answerCallbackQuery's limit
MAX_REASON = 4000
ASK_REASON = "Reply to my message with the reason for rework."
LINK_SENT = (
    "Your Telegram account is not linked to Flowgate: I sent you a link in a private chat with me."
)
PAGE_SENT = (
    "Nothing was decided: approve this one on the approval page. I sent you its link in a "
    "private chat with me."
)


def handle(request: HttpRequest) -> HttpResponse:
    verified = verified_connections(request.headers.get(SECRET_HEADER, ""))
    if not verified:
        return unverified()
    update = json_object(request.body)
    if update is None or not isinstance(update.get("update_id"), int):
        # Verified, so Telegram's: an error status would make it deliver this again and again.
        return ignored("expected an update object with an integer update_id")
    bots = sorted({bot_id(c) for c in verified})
    key = f"{'+'.join(bots)}:{update['update_id']}"
    if isinstance(update.get("callback_query"), dict):
        return _button(update["callback_query"], verified, key)
    message = update.get("message")
    if isinstance(message, dict) and isinstance(message.get("reply_to_message"), dict):
        return _reply(message, verified, key, set(bots))
    return HttpResponse(status=200)  # other updates are not ours to handle


def verified_connections(secret: str) -> list[ChannelConnection]:
    """The active Telegram connections whose webhook secret is `secret`."""
    if not secret:
        return []
    candidates = ChannelConnection.objects.filter(
        kind=ChannelKind.TELEGRAM, is_active=True
    ).select_related("workspace__organization")
    given = secret.encode()
    return [
        c
        for c in candidates.order_by("pk")
        if c.signing_secret and hmac.compare_digest(c.signing_secret.encode(), given)
    ]


def bot_id(connection: ChannelConnection) -> str:
    return connection.bot_token.partition(":")[0]


def _account(sender: Any) -> ChatAccount:
    return ChatAccount(
        kind=ChannelKind.TELEGRAM,
        team_id="",  # Telegram user ids are global
        user_id=str(dig(sender, "id")),
        display_name=str(dig(sender, "username") or dig(sender, "first_name")),
    )


def _button(query: dict[str, Any], verified, key: str) -> HttpResponse:
    account = _account(query.get("from"))
    action = decode_action(str(query.get("data", "")))
    query_id = str(query.get("id", ""))
    if action is None or not account.user_id:
        if query_id:  # stop the button's spinner, and say why nothing happened
            send_after_commit(telegram_answer(verified[0], query_id, words.NOT_OURS))
        return ignored(words.NOT_OURS)
    if action.decision == "rework":
        answer = chat_form_prompt(
            verified=verified, account=account, action=action, delivery_key=key
        )
        if answer.ok:
            send_after_commit(_prompt(answer, action, query, query_id))
            return HttpResponse(status=200)
    else:
        answer = chat_decide(verified=verified, account=account, action=action, delivery_key=key)
    if answer.duplicate:
        return HttpResponse(status=200)
    if answer.link:  # privately: the link page, or the approval page to sign in and approve
        sent = PAGE_SENT if answer.sign_in else LINK_SENT
        send_after_commit(telegram_answer(answer.connection, query_id, sent))
        return _send(account.user_id, answer.text)
    send_after_commit(telegram_answer(answer.connection, query_id, _short(answer.text)))
    return HttpResponse(status=200)


def _prompt(answer: Answer, action: CardAction, query, query_id: str) -> Notice:
    """Ask for the rework reason with a force-reply carrying the action value, then answer the
    button (or, when the prompt cannot be sent, say so)."""
    gate = answer.gate
    # Only a real username mentions its owner; a first name after "@" may be someone else's.
    username = dig(query, "from", "username")
    ask = f"@{username}, reply" if isinstance(username, str) and username else "Reply"
    text = (
        f"{ask} to this message with the reason for rework of "
        f"“{gate.run.automation.name}: {gate.title}”.\n\n{action.encode()}"
    )
    card = dig(query, "message", "message_id", default=None)
    return Notice(
        answer.connection.pk,
        "telegram.send_force_reply",
        {
            "chat_id": str(dig(query, "message", "chat", "id")),
            "text": text,
            "reply_to_message_id": card if isinstance(card, int) else None,
        },
        then=telegram_answer(answer.connection, query_id, ASK_REASON),
        otherwise=telegram_answer(answer.connection, query_id, words.NO_FORM),
    )


def _reply(message: dict[str, Any], verified, key: str, bots: set[str]) -> HttpResponse:
    prompt = message["reply_to_message"]
    action = _prompted_action(str(prompt.get("text", "")))
    if action is None or str(dig(prompt, "from", "id")) not in bots:
        return HttpResponse(status=200)  # a reply to something other than our prompt
    account = _account(message.get("from"))
    chat_id = str(dig(message, "chat", "id"))
    reason = message.get("text")
    if not isinstance(reason, str) or not reason.strip():
        return _send(chat_id, words.NEED_REASON, reply_to=message.get("message_id"))
    answer = chat_decide(
        verified=verified,
        account=account,
        action=action,
        delivery_key=key,
        reason=reason[:MAX_REASON],
    )
    if answer.duplicate:
        return HttpResponse(status=200)
    if answer.link:
        return _send(account.user_id, answer.text)
    return _send(chat_id, answer.text, reply_to=message.get("message_id"))


def _prompted_action(text: str) -> CardAction | None:
    """The action value our prompt ends with: its last line only, because the lines before quote
    the gate's title, which anyone who can name a gate may have made look like one."""
    lines = text.strip().splitlines()
    action = decode_action(lines[-1].strip()) if lines else None
    return action if action is not None and action.decision == "rework" else None


def _send(chat_id: str, text: str, *, reply_to: Any = None) -> JsonResponse:
    """A `sendMessage` Telegram runs on our behalf from the webhook response."""
    method: dict[str, Any] = {"method": "sendMessage", "chat_id": chat_id, "text": text}
    if isinstance(reply_to, int):
        method["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
    return JsonResponse(method)


def _short(text: str) -> str:
    return text if len(text) <= MAX_CALLBACK_TEXT else text[: MAX_CALLBACK_TEXT - 1] + "…"
