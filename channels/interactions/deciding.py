"""Deciding a gate from a verified chat click: the half every platform handler shares.

A platform handler verifies the request (which yields the connections whose secret signed it),
parses the chat account and the card action, and calls `chat_decide` (approve, cancel, a rework
with its reason, an approval with Slack's form values) or `chat_form_prompt` (a button that asks
for a form first — a rework reason, Slack's approve modal: may we ask?).

Both:
1. claim the delivery for every connection that verified it (`InteractionReceipt`, unique per
   connection and platform delivery key) in the transaction of everything they write, so a
   retried or replayed delivery changes nothing, a delivery whose handling failed can be
   retried, and a delivery verified by someone else's connection (their own secret, our bot's
   id: delivery keys are predictable) claims nothing of ours;
2. find the gate the button names, in a workspace of a connection that verified the request
   (several workspaces may share one Slack team or Discord app: the gate decides which one, and
   a gate of a workspace that did not sign the request is treated as unknown);
3. map the chat account through a `ChatIdentity` the user proved through one of the connections
   that verified the request (`channels.selectors.proven_identity`) to a member of that
   workspace. An unlinked account (or one linked only unconfirmed, or through another
   connection, or a user who is not a member) is refused, audited like the decision service's
   refusals (`AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED`), and sent a link to link it;
   the decision's `decidedBy` names the identity (`chat_identity_id`);
4. weigh the click's assurance: the link counts through the connection it was proven through,
   and a `workspace`-assured one (a Slack signing secret or Telegram webhook secret a workspace
   admin entered, so that admin could forge the click) may not *approve* a consequential gate
   (`approvals.policy.GatePolicy.consequential`): the decision service refuses it (`assured`
   False; audited `AUTOMATION_V2_GATE_CHAT_ASSURANCE_INSUFFICIENT`), nothing is decided, and
   the user is sent the approval page link privately, to sign in and decide there. Rework,
   cancel, and any decision of a gate that is not consequential go on;
5. call the one decision service, `approvals.decisions.gate_decide`, with the button's gate id as
   `approval_request_id` and the platform as source, so every policy rule applies (self-approval,
   reviewer authority, humans only, the transition guard for stale cards, expiry).

A refusal the user can fix in the form they submitted (`FIXABLE`: an edit outside the editable
paths or against the editable schema, a response against the response schema; only when the
caller says the values came from a form, `in_form`) writes nothing at all: the receipt and the
refusal's audit event roll back, as the API refuses malformed edits with nothing written
(`approvals.requests.request_decide`), so the same form can be corrected and submitted again.

Nothing here calls a chat platform: the handler tells the user after the commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from approvals.decisions import ASSURANCE_INSUFFICIENT, gate_decide
from approvals.models import Gate
from approvals.policy import AUTHORITY_REQUIRED, MESSAGES
from approvals.quorum import recorded_message
from approvals.request_answers import RESPONSE_INVALID
from approvals.request_edits import EDIT_INVALID, NOT_EDITABLE
from channels.actions import CardAction
from channels.cards import approval_url
from channels.interactions import words
from channels.linking import ChatAccount, link_url
from channels.models import Assurance, ChannelConnection, InteractionReceipt
from channels.selectors import ChatActor, proven_identity
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import FlowgateError
from governance.models import Membership, PrincipalKind

MAX_DELIVERY_KEY = InteractionReceipt._meta.get_field("delivery_key").max_length
# How long a receipt is kept: past the longest time a delivery can come again. Slack and Discord
# refuse signatures older than 5 minutes; Telegram redelivers an unacknowledged update for up to
# 24 hours (it keeps none longer). Two days leaves a margin for clock skew and a late beat.
RECEIPT_RETENTION = timedelta(days=2)

# Refusals a chat click cannot fix: the user is sent the approval page link privately. An
# approval request that asks for an answer (its response form) is answered there.
PAGE_ONLY = {
    ASSURANCE_INSUFFICIENT: words.sign_in_to_approve,
    RESPONSE_INVALID: words.answer_on_the_page,
}
# Refusals of values typed into a form, which the user can correct there (see the docstring).
FIXABLE = frozenset({NOT_EDITABLE, EDIT_INVALID, RESPONSE_INVALID})


@dataclass(frozen=True)
class Answer:
    """What to tell the chat user, and through which connection (the gate's workspace's when
    known, else the first that verified the request)."""

    text: str
    connection: ChannelConnection
    ok: bool = False  # a decision was applied / the rework reason may be asked for
    duplicate: bool = False  # the delivery was handled before: say and change nothing
    link: str | None = None  # a link sent privately: to link the account, or the approval page
    sign_in: bool = False  # `link` is the approval page: decide there (see `_needs_page`)
    gate: Gate | None = None
    # A `FIXABLE` refusal of a form's values: the service's `fields` (path -> messages), and
    # nothing was written (see the module docstring).
    fields: dict[str, list[str]] | None = None


def chat_decide(
    *,
    verified: Sequence[ChannelConnection],
    account: ChatAccount,
    action: CardAction,
    delivery_key: str,
    reason: str | None = None,
    arguments: Any = None,
    response: Any = None,
    in_form: bool = False,
) -> Answer:
    """Decide `action` as the member `account` is linked to (see the module docstring).

    `arguments` (edits) and `response` go to the decision service with an approval from a
    form; `in_form` makes a refusal of them an Answer with `fields` that claims nothing.
    """
    with transaction.atomic():
        found = _find(verified, account, action, delivery_key)
        if isinstance(found, Answer):
            return found
        gate, connection, actor, identity = found
        try:
            outcome = gate_decide(
                actor=actor,
                run=gate.run,
                decision=action.decision,
                reason=reason,
                approval_request_id=gate.pk,
                source=account.kind,
                assured=identity.connection.assurance == Assurance.PLATFORM,
                arguments=arguments,
                response=response,
            )
        except FlowgateError as exc:
            if in_form and exc.code in FIXABLE:
                transaction.set_rollback(True)  # no receipt, no audit: the form is resubmitted
                fields = exc.extra.get("fields") or {"": [exc.message]}
                return Answer(exc.message, connection, gate=gate, fields=fields)
            # The refusal (audited by the service) commits with the receipt.
            if exc.code in PAGE_ONLY:  # decide on the page, signed in
                url = approval_url(gate.pk)
                return Answer(
                    PAGE_ONLY[exc.code](url), connection, link=url, sign_in=True, gate=gate
                )
            return Answer(words.refusal(exc, gate), connection, gate=gate)
    if not outcome.settled:  # an approval towards a quorum: the gate stays open
        return Answer(recorded_message(outcome.gate.quorum), connection, ok=True, gate=gate)
    return Answer(words.decided(outcome.decision, gate), connection, ok=True, gate=gate)


def chat_form_prompt(
    *,
    verified: Sequence[ChannelConnection],
    account: ChatAccount,
    action: CardAction,
    delivery_key: str,
) -> Answer:
    """Whether to ask `account` for a form — a rework reason, Slack's approve modal — (`ok`),
    or why not.

    Only what can be told before asking is checked here (a linked member, an opening still
    open); the submission goes through `chat_decide`, where every rule applies.
    """
    with transaction.atomic():
        found = _find(verified, account, action, delivery_key)
        if isinstance(found, Answer):
            return found
        gate, connection, _actor, _identity = found
        state = words.gate_state(gate)
        if state is not None:
            return Answer(state, connection, gate=gate)
        return Answer("", connection, ok=True, gate=gate)


def claim_delivery(verified: Sequence[ChannelConnection], delivery_key: str) -> bool:
    """Record a delivery for each connection that verified it, in the caller's transaction;
    False when any of them recorded it before (a retry, or a replay within the signature window).

    The unique key makes a concurrent duplicate wait for the first one's transaction and then
    fail, so exactly one of them is handled, across processes.
    """
    if len(delivery_key) > MAX_DELIVERY_KEY:
        delivery_key = "sha256:" + hashlib.sha256(delivery_key.encode()).hexdigest()
    receipts = [
        InteractionReceipt(connection=c, delivery_key=delivery_key)
        for c in sorted(verified, key=lambda c: c.pk)
    ]
    try:
        with transaction.atomic():
            InteractionReceipt.objects.bulk_create(receipts)
    except IntegrityError:
        return False
    return True


def receipts_forget(*, now: datetime) -> int:
    """Delete the receipts no delivery can match any more (one DELETE); how many were."""
    deleted, _ = InteractionReceipt.objects.filter(received_at__lt=now - RECEIPT_RETENTION).delete()
    return deleted


def _find(verified, account: ChatAccount, action: CardAction, delivery_key: str):
    """(gate, connection, actor), or the Answer that ends the handling."""
    fallback = verified[0]
    if not claim_delivery(verified, delivery_key):
        return Answer(words.DUPLICATE, fallback, duplicate=True)
    by_workspace = {c.workspace_id: c for c in verified}
    gate = (
        Gate.objects.select_related("run__automation", "workspace__organization")
        .filter(pk=action.gate_id, workspace_id__in=by_workspace)
        .first()
    )
    if gate is None:
        return Answer(words.GONE, fallback)
    connection = by_workspace[gate.workspace_id]
    identity = proven_identity(verified, account, prefer=connection)
    membership = None
    if identity is not None:
        membership = (
            Membership.objects.select_related("user", "workspace__organization")
            .filter(user=identity.user, workspace=gate.workspace)
            .first()
        )
    if membership is None:
        _audit_unmapped(gate, account, action)
        if identity is None:
            link = link_url(account, connection.pk)
            return Answer(words.unlinked(account, link), connection, link=link, gate=gate)
        return Answer(words.not_member(identity.user, gate.workspace), connection, gate=gate)
    return gate, connection, ChatActor.through(identity, membership), identity


def _audit_unmapped(gate: Gate, account: ChatAccount, action: CardAction) -> None:
    """Audit a click from an account that maps to no member, as the decision service audits its
    refusals (SPEC §6.4: an unlinked chat account cannot have authority verified)."""
    actor = Actor(kind=PrincipalKind.HUMAN, workspace=gate.workspace, source=account.kind)
    audit_record(
        workspace=gate.workspace,
        event_type="automation.governance.gate_decision_denied",
        actor=actor,
        payload={
            **_gate_fields(gate, action),
            "code": AUTHORITY_REQUIRED,
            "status": 403,
            "error": MESSAGES[AUTHORITY_REQUIRED],
            "chatAccount": {
                "kind": account.kind,
                "team_id": account.team_id,
                "user_id": account.user_id,
                "display_name": account.display_name,
            },
            "decidedBy": actor.describe(),
        },
    )


def _gate_fields(gate: Gate, action: CardAction) -> dict[str, Any]:
    return {
        "runID": gate.run.run_id,
        "automationID": gate.run.automation.automation_id,
        "nodeID": gate.node_id,
        "gateID": gate.pk,
        "decision": action.decision,
    }
