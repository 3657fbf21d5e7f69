"""`POST /channels/discord/interactions`: Discord PINGs, button clicks and the rework modal.

Verification: Ed25519 over `<X-Signature-Timestamp><body>` with the public key of every active
Discord connection of the payload's application (or of none); the timestamp must be within five
minutes, so a captured request cannot be replayed later. Discord sends deliberately bad
signatures when the endpoint is registered and expects 401 for them.

Every answer is the interaction response itself, so telling the user costs no extra call:
- PING → PONG (type 1);
- approve/cancel → decided at once, the outcome as an ephemeral message (type 4, flag 64);
- rework → a modal (type 9) whose `custom_id` is the button's action value; its submission
  (type 5) decides rework with the reason.
Delivery key: the interaction id.
"""

from __future__ import annotations

import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse

from channels.actions import decode_action
from channels.interactions import words
from channels.interactions.deciding import Answer, chat_decide, chat_form_prompt
from channels.interactions.http import (
    MAX_AGE_S,
    dig,
    json_object,
    listed,
    plausible_timestamp,
    unverified,
)
from channels.linking import ChatAccount
from channels.models import ChannelConnection, ChannelKind

PING, COMPONENT, MODAL_SUBMIT = 1, 3, 5
PONG, MESSAGE, MODAL = 1, 4, 9
EPHEMERAL = 64
REASON_INPUT = "reason"
MAX_REASON = 4000


def handle(request: HttpRequest) -> HttpResponse:
    body = request.body
    payload = json_object(body)
    verified = verified_connections(body, request.headers, str(dig(payload, "application_id")))
    if not verified:
        return unverified()
    if payload is None:
        return _says("Flowgate could not read this interaction: nothing was decided.")
    kind = payload.get("type")
    if kind == PING:
        return JsonResponse({"type": PONG})
    user = dig(payload, "member", "user", default=None) or dig(payload, "user", default={})
    account = ChatAccount(
        kind=ChannelKind.DISCORD,
        team_id="",  # Discord user ids are global
        user_id=str(dig(user, "id")),
        display_name=str(dig(user, "global_name") or dig(user, "username")),
    )
    action = decode_action(str(dig(payload, "data", "custom_id")))
    if action is None or not account.user_id or kind not in (COMPONENT, MODAL_SUBMIT):
        return _says(words.NOT_OURS)
    key = str(payload.get("id", ""))
    if kind == MODAL_SUBMIT:
        reason = _modal_value(payload)
        if action.decision != "rework" or not reason.strip():
            return _says(words.NEED_REASON)
        answer = chat_decide(
            verified=verified,
            account=account,
            action=action,
            delivery_key=key,
            reason=reason[:MAX_REASON],
        )
        return _says(answer.text)
    if action.decision == "rework":
        answer = chat_form_prompt(
            verified=verified, account=account, action=action, delivery_key=key
        )
        return _rework_modal(answer, action.encode()) if answer.ok else _says(answer.text)
    answer = chat_decide(verified=verified, account=account, action=action, delivery_key=key)
    return _says(answer.text)


def verified_connections(body: bytes, headers, application_id: str) -> list[ChannelConnection]:
    """The active Discord connections of the application (or without one) whose key signed this
    (of every application when the body names none)."""
    timestamp = headers.get("X-Signature-Timestamp", "")
    try:
        signature = bytes.fromhex(headers.get("X-Signature-Ed25519", ""))
    except ValueError:
        return []
    if not plausible_timestamp(timestamp) or abs(time.time() - int(timestamp)) > MAX_AGE_S:
        return []
    candidates = ChannelConnection.objects.filter(
        kind=ChannelKind.DISCORD, is_active=True
    ).select_related("workspace__organization")
    if application_id:  # else an unreadable body: any key may have signed it
        candidates = candidates.filter(Q(application_id=application_id) | Q(application_id=""))
    message = timestamp.encode() + body
    valid: dict[str, bool] = {}
    verified = []
    for connection in candidates.order_by("pk"):
        key = connection.public_key
        if key and key not in valid:
            valid[key] = _signed(key, signature, message)
        if key and valid[key]:
            verified.append(connection)
    return verified


def _signed(public_key: str, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _modal_value(payload: dict[str, Any]) -> str:
    """The reason typed into the modal (action rows holding text inputs)."""
    for row in listed(dig(payload, "data", "components")):
        for component in listed(dig(row, "components")):
            if dig(component, "custom_id") == REASON_INPUT:
                return str(dig(component, "value"))
    return ""


def _says(text: str) -> JsonResponse:
    """An ephemeral reply only the clicking user sees; mentions in it ping nobody."""
    return JsonResponse(
        {
            "type": MESSAGE,
            "data": {"content": text, "flags": EPHEMERAL, "allowed_mentions": {"parse": []}},
        }
    )


def _rework_modal(answer: Answer, custom_id: str) -> JsonResponse:
    return JsonResponse(
        {
            "type": MODAL,
            "data": {
                "custom_id": custom_id,
                "title": "Request rework",
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {
                                "type": 4,
                                "custom_id": REASON_INPUT,
                                "label": "What should change?",
                                "placeholder": f"{answer.gate.run.automation.name}: "
                                f"{answer.gate.title}"[:100],
                                "style": 2,
                                "required": True,
                                "min_length": 1,
                                "max_length": MAX_REASON,
                            }
                        ],
                    }
                ],
            },
        }
    )
