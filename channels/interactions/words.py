"""What a chat user is told: the outcome of their click, or why it did not count, in words.

Refusals are never HTTP errors on the chat endpoints (a platform would retry or disable the
endpoint); they become one sentence, e.g. "Already approved by Alice via the approval page at
12:03 UTC on 2026-11-24." Messages for the decision service's refusals are keyed by its error
codes; a closed gate is described as its cards describe it.
"""

from __future__ import annotations

from django.utils import timezone

from approvals.decisions import gate_expired
from approvals.models import Gate
from approvals.policy import AUTHORITY_DENIED, AUTHORITY_REQUIRED, SELF_APPROVAL_FORBIDDEN
from approvals.quorum import ALREADY_APPROVED
from channels.cards import gate_outcome
from channels.linking import ChatAccount
from governance.errors import FlowgateError
from governance.models import User

PAST = {
    "approve": "approved",
    "rework": "sent back for rework",
    "cancel": "cancelled",
}
BY_CODE = {
    SELF_APPROVAL_FORBIDDEN: "You cannot approve your own request.",
    AUTHORITY_DENIED: "You lack the reviewer authority this approval needs.",
    AUTHORITY_REQUIRED: "Your reviewer authority could not be verified for this approval.",
    "AUTOMATION_V2_ACCESS_DENIED": "You may not review this automation.",
    "AUTOMATION_V2_GATE_REQUIRES_HUMAN": "Only people can decide approvals.",
    "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED": "This approval does not offer that decision.",
    "AUTOMATION_V2_NOT_FOUND": "This approval no longer exists.",
    "AUTOMATION_V2_RUN_NOT_FOUND": "This approval no longer exists.",
    ALREADY_APPROVED: "You have already approved this; it needs approvals from other people.",
}
GONE = "This approval no longer exists."
NEED_REASON = "Say what should change: a rework needs a reason."
DUPLICATE = "This click was already handled."
NO_FORM = "The rework form could not be opened in time, so nothing was decided: press Rework again."
NO_APPROVE_FORM = (
    "The approval form could not be opened in time, so nothing was decided: press Approve again."
)
NOT_A_FORM = "This form is not from Flowgate."
NOT_OURS = "This button is not from a Flowgate card: nothing was decided."


def decided(decision: str, gate: Gate) -> str:
    title = f"{gate.run.automation.name}: {gate.title}"
    return f"{PAST[decision].capitalize()}: “{title}”. The card will show the decision."


def refusal(error: FlowgateError, gate: Gate) -> str:
    """Words for a refusal of the decision service. A refusal about the gate's state (decided,
    expired, superseded, another opening is current) describes the gate the button named."""
    if error.code in BY_CODE:
        return BY_CODE[error.code]
    state = gate_state(Gate.objects.select_related("run").get(pk=gate.pk))
    return state or error.message


def gate_state(gate: Gate) -> str | None:
    """Why this opening can no longer be decided, or None while it is open. A decided one is
    described as its cards show it (`channels.cards.gate_outcome`), e.g. "Already approved by
    Alice via the approval page at 12:03 UTC on 2026-11-24."."""
    outcome = gate_outcome(gate)
    if outcome is None:
        return "This approval expired." if gate_expired(gate, timezone.now()) else None
    if outcome.key in PAST:
        return f"Already {outcome.headline[0].lower()}{outcome.headline[1:]}"
    if outcome.key == "superseded":
        return f"This card is out of date. {outcome.headline}"
    return outcome.headline


def unlinked(account: ChatAccount, link: str) -> str:
    return f"Your {account.kind.title()} account is not linked to Flowgate: {link}"


def not_member(user: User, workspace) -> str:
    return (
        f"Your linked Flowgate account {user.username} is not a member of {workspace.path}, "
        "where this approval lives."
    )


def sign_in_to_approve(url: str) -> str:
    return (
        "Nothing was decided: approving this consequential action needs the approval page, "
        f"because this chat connection cannot prove who clicked. Sign in and decide there: {url}"
    )


def answer_on_the_page(url: str) -> str:
    return (
        "Nothing was decided: this request asks for an answer with the approval (a form). "
        f"Sign in and give it on the approval page: {url}"
    )


def form_on_the_page(url: str) -> str:
    return (
        "Nothing was decided: this request's form is too large for Slack. "
        f"Sign in and approve it on the approval page: {url}"
    )
