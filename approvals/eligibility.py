"""Read-only: may this person decide this gate now, and if not, why not.

The approval page explains a gate before anyone clicks: which decisions the reader may take,
the grounds for it, and for every refused decision the rule that refuses it. The rules are the
decision service's own (`governance.policy.authorize` for the review permission and
`approvals.policy` for self-approval and reviewer authority, in SPEC §6.3's order), so the page
can never promise what `approvals.decisions.gate_decide` would then refuse; the service stays
the judge when the form is posted. Nothing here writes (reads pass `audit=False`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from approvals.decisions import gate_expired
from approvals.delegation import delegated_authority
from approvals.models import Gate, GateStatus
from approvals.policy import (
    APPROVAL_REQUIRED_RISK_TIERS,
    AUTHORITY_DENIED,
    ELEVATED_DATA_CLASSES,
    MESSAGES,
    SELF_APPROVAL_FORBIDDEN,
    GatePolicy,
    authority_refusal,
    escalation_grants,
    separation_refusal,
)
from approvals.quorum import approved_by
from automations.models import Run, RunStatus
from governance.actors import Actor
from governance.errors import Forbidden, NotFound
from governance.policy import (
    REVIEW,
    REVIEW_ELEVATED,
    ROLE_PERMISSIONS,
    Action,
    authorize,
    automation_permissions,
)
from governance.services import member_clearances

HUMANS_ONLY = "Only a verified human may decide approval gates."


@dataclass(frozen=True)
class Eligibility:
    """What the actor may do on one gate opening.

    `closed` says why the gate takes no decision from anyone (decided, expired, superseded);
    otherwise `allowed` lists the offered decisions the actor may submit, `refused` maps each
    other offered decision to the rule that refuses it, and `grounds` says why the actor may
    decide at all.
    """

    allowed: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    grounds: tuple[str, ...] = ()
    closed: str | None = None

    @property
    def may_decide(self) -> bool:
        return bool(self.allowed)


def gate_eligibility(
    *, actor: Actor, gate: Gate, run: Run, now: datetime | None = None
) -> Eligibility:
    """Judge `actor` on `gate` (an opening of `run`, with the run's automation joined)."""
    now = now or timezone.now()
    closed = _closed(gate, run, now)
    if closed is not None:
        return Eligibility(closed=closed)
    offered = tuple(gate.decisions)
    if not actor.is_human or actor.user is None:
        return Eligibility(refused=dict.fromkeys(offered, HUMANS_ONLY))
    # As the decision service does: the automation's permissions, plus `review` on this
    # opening when it was escalated to the actor (SPEC §6.5).
    own = automation_permissions(actor, run.automation)
    escalated = escalation_grants(gate, actor)
    policy = GatePolicy.of(gate.policy)
    # As the decision service does: when the reader's own authority falls short, an active
    # delegator's (`approvals.delegation`), with separation of duties checked for both.
    lent = delegated_authority(actor=actor, run=run, gate=gate, policy=policy, now=now)
    try:
        held = authorize(actor, Action.REVIEW, run.automation, audit=False, held=own | escalated)
    except (Forbidden, NotFound):
        if lent is None:
            role = actor.role or "none"
            return Eligibility(
                refused=dict.fromkeys(
                    offered,
                    f"You may not review this automation: your role ({role}) does not include "
                    "review and you hold no review grant on it.",
                )
            )
        held = None
    grounds = (
        [_review_ground(actor, run, escalated_only=REVIEW not in own)] if held is not None else []
    )
    authority = (
        authority_refusal(actor=actor, policy=policy, held=held, workspace=run.workspace)
        if held is not None
        else AUTHORITY_DENIED  # no review permission of their own: only the delegation's
    )
    people = [actor]
    if authority is not None and lent is not None:
        lender, held = lent
        people.append(lender)
        grounds = [
            f"You decide for {lender.actor_id}, who delegated their review authority to you; "
            "the decision records you both."
        ]
        authority = None
    if authority is not None:
        explanation = _authority_explanation(actor, run, policy, held)
        return Eligibility(refused=dict.fromkeys(offered, explanation), grounds=tuple(grounds))
    grounds += _authority_grounds(policy)
    refused = {}
    for decision in offered:
        for person in people:
            rule = separation_refusal(actor=person, run=run, policy=policy, decision=decision)
            if rule is not None:
                you = (
                    "you are" if person is actor else f"{person.actor_id}, for whom you decide, is"
                )
                refused[decision] = (
                    f"{MESSAGES[SELF_APPROVAL_FORBIDDEN]}: {you} {rule.who} (rule {rule.name}) "
                    f"and the gate is consequential ({_consequential_because(policy)}). Someone "
                    "not accountable for it must approve it; you may still send it back for "
                    "rework or cancel it."
                )
                break
    if (
        "approve" in offered
        and "approve" not in refused
        and approved_by(gate.quorum, actor.user.username)
    ):
        refused["approve"] = (
            f"You have already approved this opening ({gate.quorum['summary']}): the remaining "
            "approvals must come from other people. You may still send it back for rework or "
            "cancel it."
        )
    allowed = tuple(d for d in offered if d not in refused)
    return Eligibility(allowed=allowed, refused=refused, grounds=tuple(grounds))


def _closed(gate: Gate, run: Run, now: datetime) -> str | None:
    if gate.status == GateStatus.DECIDED:
        return "This gate has been decided."
    if gate.status == GateStatus.SUPERSEDED:
        return (
            "This opening of the gate was superseded (the run was repaired, reset or "
            "cancelled); it can no longer be decided."
        )
    if gate_expired(gate, now):
        return "This gate expired before a decision was made."
    if run.status != RunStatus.AWAITING_APPROVAL:
        return f"The run is {run.get_status_display().lower()}, not awaiting approval."
    return None


def _review_ground(actor: Actor, run: Run, *, escalated_only: bool) -> str:
    if escalated_only:
        return "This gate was escalated to you, which lets you review this opening."
    if run.automation.created_by_id == actor.user.pk:
        return "You own this automation, which includes the review permission."
    if "review_automation" in ROLE_PERMISSIONS.get(actor.role, frozenset()):
        return f"Your role in this workspace ({actor.role}) includes the review permission."
    return "You hold a review grant on this automation."


def _authority_grounds(policy: GatePolicy) -> list[str]:
    grounds = []
    if policy.elevated:
        grounds.append("You hold elevated review authority, which this gate requires.")
    if policy.data_classes:
        classes = ", ".join(policy.data_classes)
        grounds.append(f"You are cleared for every data class on this gate ({classes}).")
    return grounds


def _authority_explanation(actor: Actor, run: Run, policy: GatePolicy, held: frozenset[str]) -> str:
    """Which authority the gate needs that the actor lacks (`authority_refusal` said that some
    is missing; this names it)."""
    missing = []
    if policy.elevated and REVIEW_ELEVATED not in held:
        missing.append("elevated review authority (a review_elevated grant or workspace admin)")
    lacking = sorted(
        set(policy.data_classes) - set(member_clearances(workspace=run.workspace, user=actor.user))
    )
    if lacking:
        missing.append(
            f"clearance for the data class{'es' if len(lacking) > 1 else ''} {', '.join(lacking)}"
        )
    return f"{MESSAGES[AUTHORITY_DENIED]}: this gate needs {' and '.join(missing)}."


def _consequential_because(policy: GatePolicy) -> str:
    """What makes the gate consequential (`GatePolicy.consequential`), in words."""
    reasons = []
    if policy.reviewer_eligibility != "none":
        reasons.append(f"reviewer eligibility {policy.reviewer_eligibility}")
    if policy.risk_tier in APPROVAL_REQUIRED_RISK_TIERS:
        reasons.append(f"risk tier {policy.risk_tier}")
    elevated = [c for c in policy.data_classes if c in ELEVATED_DATA_CLASSES]
    if elevated:
        reasons.append(f"data class {', '.join(elevated)}")
    return "; ".join(reasons)
