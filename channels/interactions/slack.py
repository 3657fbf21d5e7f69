"""`POST /channels/slack/interactions`: Slack button clicks and the submissions of the rework and
approve modals.

Verification: slack-sdk's `SignatureVerifier` (HMAC over `v0:<timestamp>:<body>`, 5-minute
window) with the signing secret of every active Slack connection of the payload's team (or of
no team): its own, or the deployment app's (`FLOWGATE_SLACK_SIGNING_SECRET`) for a connection
without one; the connections whose secret verifies are the ones the request may act for.

- `block_actions` on an approve/cancel button decides at once; the user is told the outcome
  privately (`chat.postEphemeral`, sent by a task after the response: channels/notices.py).
  Delivery key: team, user, `action_ts` and the message. Approve on the card of an approval
  request with editable fields or a simple response form opens the approve modal instead
  (`slack_approve_form`), the same way as the rework modal below; not through a connection
  that may not approve it (`_may_approve`): that click is refused and sent the page at once.
- A rework button opens a modal (`views.open`, in the request before the 3-second trigger
  expires, with the short `FLOWGATE_SLACK_MODAL_TIMEOUT_S`; if Slack does not take it in time
  the user is told privately to press Rework again) whose `private_metadata` carries the gate
  id; its `view_submission` decides rework with the reason, answered in the modal itself
  (`response_action: update`, so no channel is needed). An empty reason is an inline error and
  claims nothing, so the user can fix it and submit again.
- The approve modal's `view_submission` approves with the edits (only the changed values) and
  the response it holds, through the same `chat_decide`. A refusal of those values the user can
  fix (an edit outside the editable paths or against their schema, a response against the
  response schema) is an inline error on the offending input and writes nothing; any other
  outcome replaces the modal with its words (a `workspace`-assured connection's approval of a
  consequential request: the approval page link).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from slack_sdk.signature import SignatureVerifier

from approvals.policy import GatePolicy
from channels.actions import CardAction, decode_action
from channels.cards import approval_url, slack_text
from channels.interactions import slack_approve_form, words
from channels.interactions.deciding import Answer, chat_decide, chat_form_prompt
from channels.interactions.http import (
    dig,
    ignored,
    json_object,
    logger,
    plausible_timestamp,
    unverified,
)
from channels.linking import ChatAccount
from channels.models import Assurance, ChannelConnection, ChannelKind
from channels.notices import send_after_commit, slack_ephemeral
from channels.platforms import PlatformError
from channels.platforms import slack as slack_api

REWORK_CALLBACK = "fg_rework"
REASON_BLOCK = "reason"
MAX_REASON = 3000


def handle(request: HttpRequest) -> HttpResponse:
    body = request.body
    payload = json_object(request.POST.get("payload", ""))
    team_id = str(dig(payload, "team", "id") or dig(payload, "user", "team_id"))
    verified = verified_connections(body, request.headers, team_id)
    if not verified:
        return unverified()
    if payload is None:
        return ignored("expected a form field `payload` holding a JSON object")
    account = ChatAccount(
        kind=ChannelKind.SLACK,
        team_id=team_id,
        user_id=str(dig(payload, "user", "id")),
        display_name=str(dig(payload, "user", "name") or dig(payload, "user", "username")),
    )
    if not account.user_id:
        return ignored("the interaction names no user")
    if payload.get("type") == "block_actions":
        return _button(payload, verified, account)
    if payload.get("type") == "view_submission":
        submitted = SUBMISSIONS.get(str(dig(payload, "view", "callback_id")))
        if submitted is not None:
            return submitted(payload, verified, account)
    # Not ours to handle. An empty 200: Slack reads a body of a view submission as its answer.
    return HttpResponse(status=200)


def verified_connections(body: bytes, headers, team_id: str) -> list[ChannelConnection]:
    """The active Slack connections of `team_id` (or without a team) whose secret signed this
    (of every team when the payload names none)."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not plausible_timestamp(timestamp) or not signature:
        return []
    candidates = ChannelConnection.objects.filter(
        kind=ChannelKind.SLACK, is_active=True
    ).select_related("workspace__organization")
    if team_id:  # else an unreadable payload: any secret may have signed it
        candidates = candidates.filter(Q(external_team_id=team_id) | Q(external_team_id=""))
    valid: dict[str, bool] = {}
    verified = []
    for connection in candidates.order_by("pk"):
        secret = connection.verifying_secret  # its own, or the deployment app's
        if not secret:
            continue
        if secret not in valid:
            valid[secret] = _signed(secret, body, timestamp, signature)
        if valid[secret]:
            verified.append(connection)
    return verified


def _signed(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    try:
        return SignatureVerifier(secret).is_valid(
            body=body, timestamp=timestamp, signature=signature
        )
    except ValueError:  # incl. UnicodeDecodeError: the verifier decodes the body as UTF-8
        return False


def _button(payload, verified, account: ChatAccount) -> HttpResponse:
    actions = payload.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else {}
    action = decode_action(str(dig(first, "value")))
    channel = str(dig(payload, "container", "channel_id") or dig(payload, "channel", "id"))
    if action is None:
        if channel:
            send_after_commit(
                slack_ephemeral(verified[0], channel, account.user_id, words.NOT_OURS)
            )
        return HttpResponse(status=200)
    key = ":".join(
        [
            account.team_id,
            account.user_id,
            str(dig(first, "action_ts")),
            str(dig(payload, "container", "message_ts") or dig(payload, "container", "view_id")),
        ]
    )
    form = _form_first(action, verified)
    if form is None:
        answer = chat_decide(verified=verified, account=account, action=action, delivery_key=key)
    else:
        answer = chat_form_prompt(
            verified=verified, account=account, action=action, delivery_key=key
        )
        view = form(answer) if answer.ok else None
        if view is not None and _opened(answer, payload, view):
            return HttpResponse(status=200)
        if answer.ok and view is None:  # too large for a modal: the page takes any form
            answer = replace(answer, text=words.form_on_the_page(approval_url(action.gate_id)))
        elif answer.ok:
            answer = replace(answer, text=NOT_OPENED[action.decision])
    if not answer.duplicate and channel:
        send_after_commit(slack_ephemeral(answer.connection, channel, account.user_id, answer.text))
    return HttpResponse(status=200)


def _form_first(action: CardAction, verified) -> Callable[[Answer], dict[str, Any] | None] | None:
    """The modal the button opens before anything is decided (built once the click may ask
    for it), or None to decide at once: rework asks for a reason, an approval request's
    Approve for its edits and response (`slack_approve_form.takes_form`)."""
    if action.decision == "rework":
        return lambda answer: rework_modal(answer, action)
    if action.decision == "approve":
        asked = slack_approve_form.request_asking(verified, action.gate_id)
        if (
            asked is not None
            and slack_approve_form.takes_form(asked)
            and _may_approve(asked.gate, verified)
        ):
            return lambda _answer: slack_approve_form.approve_modal(asked, action)
    return None


def _may_approve(gate, verified) -> bool:
    """Whether a click verified by `verified` can approve `gate` at all. One that only
    `workspace`-assured connections verified may not approve a consequential gate (every
    approval request is one): no form is asked for, and deciding at once lets the decision
    service refuse it (audited) and send the approval page link, as for any gate."""
    platform = any(c.assurance == Assurance.PLATFORM for c in verified)
    return platform or not GatePolicy.of(gate.policy).consequential


def _opened(answer: Answer, payload, view: dict[str, Any]) -> bool:
    """Open the form now, while the trigger id is valid; False (logged) when Slack did not
    take it in time."""
    try:
        slack_api.open_modal(answer.connection, str(payload.get("trigger_id", "")), view)
    except PlatformError:
        logger.warning("slack views.open failed", exc_info=True)
        return False
    return True


def rework_modal(answer: Answer, action: CardAction) -> dict[str, Any]:
    gate = answer.gate
    return {
        "type": "modal",
        "callback_id": REWORK_CALLBACK,
        "title": {"type": "plain_text", "text": "Request rework"},
        "submit": {"type": "plain_text", "text": "Send back"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"gate": action.gate_id}),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "plain_text",
                    "text": f"{gate.run.automation.name}: {gate.title}"[:3000],
                },
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {
                    "type": "plain_text",
                    "text": "What should change before this can be approved?",
                },
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_BLOCK,
                    "multiline": True,
                    "max_length": MAX_REASON,
                },
            },
        ],
    }


def _rework_submitted(payload, verified, account: ChatAccount) -> HttpResponse:
    metadata = json_object(str(dig(payload, "view", "private_metadata"))) or {}
    action = decode_action(f"fg:rework:{metadata.get('gate', '')}")
    if action is None:
        return _modal_says(words.NOT_A_FORM)
    reason = str(dig(payload, "view", "state", "values", REASON_BLOCK, REASON_BLOCK, "value") or "")
    if not reason.strip():
        return JsonResponse(
            {"response_action": "errors", "errors": {REASON_BLOCK: words.NEED_REASON}}
        )
    key = f"view:{dig(payload, 'view', 'id')}"
    answer = chat_decide(
        verified=verified,
        account=account,
        action=action,
        delivery_key=key,
        reason=reason[:MAX_REASON],
    )
    if answer.duplicate:
        return JsonResponse({"response_action": "clear"})
    return _modal_says(answer.text)


def _approve_submitted(payload, verified, account: ChatAccount) -> HttpResponse:
    metadata = json_object(str(dig(payload, "view", "private_metadata"))) or {}
    action = decode_action(f"fg:approve:{metadata.get('gate', '')}")
    if action is None:
        return _modal_says(words.NOT_A_FORM)
    asked = slack_approve_form.request_asking(verified, action.gate_id)
    if asked is None:
        return _modal_says(words.GONE)
    values = dig(payload, "view", "state", "values", default={})
    edits, response = slack_approve_form.submitted(asked, values)
    answer = chat_decide(
        verified=verified,
        account=account,
        action=action,
        delivery_key=f"view:{dig(payload, 'view', 'id')}",
        arguments=edits,
        response=response,
        in_form=True,
    )
    if answer.fields is not None:  # nothing was claimed: fixed, the same view comes again
        blocks = list(values) if isinstance(values, dict) else []
        errors = slack_approve_form.inline_errors(answer.fields, blocks)
        if errors:
            return JsonResponse({"response_action": "errors", "errors": errors})
    if answer.duplicate:
        return JsonResponse({"response_action": "clear"})
    return _modal_says(answer.text)


SUBMISSIONS = {
    REWORK_CALLBACK: _rework_submitted,
    slack_approve_form.APPROVE_CALLBACK: _approve_submitted,
}
# What the user is told when Slack did not take a modal in time (nothing was decided).
NOT_OPENED = {"rework": words.NO_FORM, "approve": words.NO_APPROVE_FORM}


def _modal_says(text: str) -> JsonResponse:
    """Replace the submitted modal with one that shows `text` (the submission's answer)."""
    return JsonResponse(
        {
            "response_action": "update",
            "view": {
                "type": "modal",
                "title": {"type": "plain_text", "text": "Flowgate"},
                "close": {"type": "plain_text", "text": "Close"},
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": slack_text(text)}}
                ],
            },
        }
    )
