"""Signed requests to our interaction endpoints, as Slack, Discord and Telegram send them, and
reads of what a chat request wrote (decisions, denials, receipts). The gates and linked
accounts these requests decide are built by tests/factories.py (`gate_for`, `link`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client, TestCase

from approvals.models import Gate, GateDecision
from channels.models import InteractionReceipt
from governance.models import AuditEvent

SLACK_SECRET = "slack-signing-secret"
SLACK_TEAM = "T0001"
TELEGRAM_SECRET = "telegram-webhook-secret"
TELEGRAM_BOT_ID = 123456  # the bot id of the fixture's token "123456:telegram-bot-token"
DISCORD_APP = "1000000000000000001"


def post(path: str, body: str, content_type: str, **headers):
    """POST `body` to an interaction endpoint as the platform does, then run what the request
    scheduled after its commit (a test transaction never commits; with a real worker nothing is
    deferred, so nothing is captured)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(path, data=body, content_type=content_type, **headers)


def snapshot(gate: Gate) -> tuple:
    """Everything a chat request could write: decisions, audit events, receipts, run status."""
    gate.run.refresh_from_db(fields=["status"])
    return (
        gate.run.status,
        GateDecision.objects.filter(run=gate.run).count(),
        AuditEvent.objects.count(),
        InteractionReceipt.objects.count(),
    )


def decisions(gate: Gate) -> list[tuple[str, str, str, str]]:
    return [
        (d.decision, d.source, d.decided_by.username if d.decided_by else "", d.reason)
        for d in GateDecision.objects.filter(gate=gate, settles=True).select_related("decided_by")
    ]


def denial_codes(gate: Gate) -> list[str]:
    return [
        e.payload["code"]
        for e in AuditEvent.objects.filter(
            event_type="automation.governance.gate_decision_denied", payload__gateID=gate.pk
        ).order_by("seq")
    ]


# --- Slack ------------------------------------------------------------------------------------


def slack_sign(body: str, timestamp: str, secret: str = SLACK_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_post(
    payload: dict | None, *, secret=SLACK_SECRET, timestamp=None, signature=None, form=None
):
    """POST `payload` signed with `secret` (or the form fields `form`, e.g. a malformed one)."""
    body = urlencode({"payload": json.dumps(payload)} if form is None else form)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return post(
        "/channels/slack/interactions",
        body,
        "application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=stamp,
        HTTP_X_SLACK_SIGNATURE=signature or slack_sign(body, stamp, secret),
    )


def slack_click(gate_id: str, decision: str, *, user="U0RITA", team=SLACK_TEAM, ts="1.0001"):
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": "rita", "name": "rita", "team_id": team},
        "api_app_id": "A0001",
        "trigger_id": f"trigger-{ts}",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": "C0FLOWGATE",
        },
        "channel": {"id": "C0FLOWGATE", "name": "approvals"},
        "actions": [
            {
                "type": "button",
                "action_id": f"fg-{decision}",
                "value": f"fg:{decision}:{gate_id}",
                "action_ts": ts,
            }
        ],
    }


def slack_submission(view: dict, reason: str, *, user="U0RITA", team=SLACK_TEAM, view_id="V1"):
    """The rework modal `view` submitted with `reason`."""
    values = {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    return slack_view_submission(view, values, user=user, team=team, view_id=view_id)


def slack_view_submission(
    view: dict, values: dict, *, user="U0RITA", team=SLACK_TEAM, view_id="V1"
) -> dict:
    """`view` submitted with the input state `values` (block id -> action id -> state)."""
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": "rita", "name": "rita", "team_id": team},
        "view": {**view, "id": view_id, "state": {"values": values}},
    }


# --- Discord ----------------------------------------------------------------------------------


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def discord_post(
    payload: dict | None, key: Ed25519PrivateKey, *, timestamp=None, signature=None, raw=None
):
    """POST `payload` (or the text `raw`, e.g. malformed JSON) signed with `key`."""
    body = json.dumps(payload) if raw is None else raw
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = key.sign(stamp.encode() + body.encode()).hex()
    return post(
        "/channels/discord/interactions",
        body,
        "application/json",
        HTTP_X_SIGNATURE_ED25519=signature or signed,
        HTTP_X_SIGNATURE_TIMESTAMP=stamp,
    )


def discord_click(gate_id: str, decision: str, *, user="2000000000000000001", id="9000001"):
    data = {"custom_id": f"fg:{decision}:{gate_id}", "component_type": 2}
    return {
        **_discord_interaction(3, data, user=user, id=id),
        "guild_id": "1000000000000000009",
        "channel_id": "1100000000000000001",
    }


def discord_submission(custom_id: str, reason: str, *, user="2000000000000000001", id="9000002"):
    reason_input = {"type": 4, "custom_id": "reason", "value": reason}
    data = {"custom_id": custom_id, "components": [{"type": 1, "components": [reason_input]}]}
    return _discord_interaction(5, data, user=user, id=id)


def _discord_interaction(kind: int, data: dict, *, user: str, id: str) -> dict:
    return {
        "id": id,
        "application_id": DISCORD_APP,
        "type": kind,
        "token": "interaction-token",
        "member": {"user": {"id": user, "username": "rita", "global_name": "Rita"}},
        "data": data,
    }


# --- Telegram ---------------------------------------------------------------------------------


def telegram_post(update: dict | list, *, secret=TELEGRAM_SECRET):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret is not None else {}
    return post(
        "/channels/telegram/interactions",
        json.dumps(update),
        "application/json",
        **headers,
    )


def telegram_press(gate_id: str, decision: str, *, update_id=1, user=5000001, chat=-1001234567890):
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cbq-{update_id}",
            "from": {"id": user, "is_bot": False, "first_name": "Rita", "username": "rita"},
            "message": {"message_id": 42, "chat": {"id": chat, "type": "supergroup"}},
            "chat_instance": "ci-1",
            "data": f"fg:{decision}:{gate_id}",
        },
    }


def telegram_reply(prompt_text: str, reason, *, update_id=2, user=5000001, bot=TELEGRAM_BOT_ID):
    chat = {"id": -1001234567890, "type": "supergroup"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 77,
            "from": {"id": user, "is_bot": False, "first_name": "Rita", "username": "rita"},
            "chat": chat,
            "text": reason,
            "reply_to_message": {
                "message_id": 43,
                "from": {"id": bot, "is_bot": True, "first_name": "Flowgate"},
                "chat": chat,
                "text": prompt_text,
            },
        },
    }
