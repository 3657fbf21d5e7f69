"""Who may decide a gate: consequential gates, separation of duties and reviewer authority.

SPEC §6.4 and the reference notes §5.4 / §11.3, with SPEC §10's corrections and issue 13's
widening:
- identities are Flowgate users: a click from a linked chat account is that user, so the
  requester clicking "approve" in Slack is still the requester (no channel-id canonicalisation);
- a chat decider is judged exactly like an API decider (the original let channel-verified
  deciders bypass reviewer authority);
- separation of duties: nobody accountable for a run's work may approve its consequential
  gates (`SEPARATION_RULES`: the requester, the automation's creator, the author of the version
  the run executes, and an agent requester's grantors), as a merge request's author and
  committers may not approve it. Rework and cancel by them stay allowed;
- clearances are personal: everyone, workspace admins and superusers included, needs a
  clearance for every data class on the gate (`governance.services.member_clearances`).

Pure functions over the gate row, the run and the permissions the caller holds; the decision
service (`approvals.decisions`) calls them in SPEC §6.3's order and audits every refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import Contains

from approvals.quorum import Quorum
from governance.actors import Actor
from governance.models import DATA_CLASSES, clearance_codename
from governance.policy import REVIEW, REVIEW_ELEVATED
from governance.services import member_clearances

# Risk tiers that need an approval by default (the original's `approval_required_by_default`).
APPROVAL_REQUIRED_RISK_TIERS = frozenset(
    {
        "consequential_write",
        "external_send",
        "financial_record_access",
        "credential_admin",
        "destructive_delete",
        "money_movement_contract",
    }
)
# Data classes that make a gate consequential (`data_class_requires_elevated`).
ELEVATED_DATA_CLASSES = frozenset(
    {"restricted", "credential", "financial_record", "executive", "regulated"}
)

SELF_APPROVAL_FORBIDDEN = "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
AUTHORITY_REQUIRED = "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"
AUTHORITY_DENIED = "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED"
MESSAGES = {
    SELF_APPROVAL_FORBIDDEN: "You are accountable for this work and cannot approve it",
    AUTHORITY_REQUIRED: "Reviewer authority could not be verified for this approval",
    AUTHORITY_DENIED: "Reviewer lacks matching authority for this approval",
}


@dataclass(frozen=True)
class GatePolicy:
    """A gate's normalised policy (`automations.flow.gate_policy.parse_policy`)."""

    reviewer_eligibility: str = "none"
    risk_tier: str | None = None
    data_classes: tuple[str, ...] = ()
    # How many distinct people (and from which groups) must approve (`approvals.quorum`); the
    # gate's property, so it applies wherever the gate is decided.
    quorum: Quorum = field(default_factory=Quorum)

    @classmethod
    def of(cls, policy: dict[str, Any] | None) -> GatePolicy:
        policy = policy or {}
        return cls(
            reviewer_eligibility=policy.get("reviewer_eligibility") or "none",
            risk_tier=policy.get("risk_tier") or None,
            data_classes=tuple(policy.get("data_classes") or ()),
            quorum=Quorum.of(policy.get("quorum")),
        )

    @property
    def elevated(self) -> bool:
        return self.reviewer_eligibility == "elevated_reviewer"

    @property
    def consequential(self) -> bool:
        """Eligibility other than `none`, an approval-by-default risk tier, or a data class
        that needs elevation: the requester may not approve it."""
        return (
            self.reviewer_eligibility != "none"
            or self.risk_tier in APPROVAL_REQUIRED_RISK_TIERS
            or any(c in ELEVATED_DATA_CLASSES for c in self.data_classes)
        )

    @property
    def requires_authority(self) -> bool:
        return self.elevated or bool(self.data_classes)


def requester_id(run) -> int | None:
    """The Flowgate user who asked for the run: `requested_by`, else the automation's creator."""
    return run.requested_by_id or run.automation.created_by_id


# --- separation of duties ------------------------------------------------------------------------


@dataclass(frozen=True)
class SeparationRule:
    """One way a person is accountable for a run's work, and so may not approve its consequential
    gates: `name` is the refusal's `reason`, `who` says whom it names (docs, approval page), and
    `accountable(run)` gives their user pks (None entries are ignored). Reads only columns of the
    run and its joined automation, so judging a list of gates costs no query per row."""

    name: str
    who: str
    accountable: Callable[[Any], tuple[int | None, ...]]


def _version_author(run) -> tuple[int | None, ...]:
    snapshot = run.automation_snapshot if isinstance(run.automation_snapshot, dict) else {}
    author = snapshot.get("changed_by_id")
    return (author,) if isinstance(author, int) else ()


def _grantors(run) -> tuple[int | None, ...]:
    return tuple(int(pk) for pk in run.requester_grantors or () if str(pk).isdigit())


SEPARATION_RULES: tuple[SeparationRule, ...] = (
    SeparationRule(
        name="requester",
        who="the run's requester (who started it)",
        accountable=lambda run: (run.requested_by_id,),
    ),
    SeparationRule(
        name="automation_creator",
        who="the automation's creator (its owner)",
        accountable=lambda run: (run.automation.created_by_id,),
    ),
    SeparationRule(
        name="version_author",
        who=(
            "whoever made the change (an update or a run repair) that produced the automation "
            "version the run executes"
        ),
        accountable=_version_author,
    ),
    SeparationRule(
        name="requester_grantor",
        who=(
            "when the requester is an agent or a service: the humans who granted it the right "
            "to run the automation (its `operate` grants, read when the run starts)"
        ),
        accountable=_grantors,
    ),
)


def accountable_user_ids(run) -> set[int]:
    """Every user accountable for the run's work under `SEPARATION_RULES`."""
    return {pk for rule in SEPARATION_RULES for pk in rule.accountable(run) if pk is not None}


def separation_refusal(
    *, actor: Actor, run, policy: GatePolicy, decision: str
) -> SeparationRule | None:
    """The first rule making the actor accountable for the run, when they approve a
    consequential gate; rework and cancel by them are allowed. No grant, role or superuser
    status lifts it."""
    if decision != "approve" or actor.user is None:
        return None
    return approval_barred_by(actor.user, run=run, policy=policy)


def approval_barred_by(user, *, run, policy: GatePolicy) -> SeparationRule | None:
    """The first rule barring `user` from approving a gate with `policy` of `run` (None on a
    gate that is not consequential); what the pending list marks per gate."""
    if not policy.consequential:
        return None
    return next((rule for rule in SEPARATION_RULES if user.pk in rule.accountable(run)), None)


# --- reviewer rules ------------------------------------------------------------------------------
# Each rule is written once, as a test on one gate (the decision, `approvals.decisions`) and as a
# condition on Gate rows (the pending list, `approvals.selectors`), side by side so they cannot
# drift apart.


@dataclass(frozen=True)
class AuthorityRule:
    """Reviewer authority some gates need: `codename`, an automation permission or (when
    `data_class` is set) that class's clearance in the workspace, on the gates where `applies`
    holds, which are the Gate rows matching `gates`."""

    codename: str
    applies: Callable[[GatePolicy], bool]
    gates: Q
    data_class: str | None = None


def _clearance_rule(data_class: str) -> AuthorityRule:
    # The quoted class in the JSON text: works on PostgreSQL and on the embedded SQLite default
    # alike (SQLite has no JSON containment lookups); class names are lowercase identifiers, so
    # a quoted name never matches inside another.
    return AuthorityRule(
        codename=clearance_codename(data_class),
        applies=lambda policy: data_class in policy.data_classes,
        gates=Q(policy__data_classes__icontains=json.dumps(data_class)),
        data_class=data_class,
    )


AUTHORITY_RULES: tuple[AuthorityRule, ...] = (
    AuthorityRule(
        codename=REVIEW_ELEVATED,
        applies=lambda policy: policy.elevated,
        gates=Q(policy__reviewer_eligibility="elevated_reviewer"),
    ),
    *(_clearance_rule(c) for c in DATA_CLASSES),
)


def escalation_grants(gate, actor: Actor) -> frozenset[str]:
    """`review` for this opening only, to the human members it was escalated to (SPEC §6.5):
    escalation extends who may decide one gate opening and grants nothing on the automation.
    The Gate rows it applies to are `escalated_to_condition(actor)`."""
    user = actor.user
    if not actor.is_human or user is None or gate.escalated_at is None:
        return frozenset()
    return frozenset({REVIEW}) if user.username in (gate.escalated_to or ()) else frozenset()


def escalated_to_condition(actor: Actor) -> Q:
    """Gate rows escalated to the actor (the query form of `escalation_grants`): the quoted
    username in the `escalated_to` JSON text (SQLite has no JSON containment lookups)."""
    in_text = Contains(Cast("escalated_to", TextField()), json.dumps(actor.user.username))
    return Q(escalated_at__isnull=False) & Q(in_text)


def authority_refusal(
    *,
    actor: Actor,
    policy: GatePolicy,
    held: frozenset[str],
    workspace,
    cleared: frozenset[str] | None = None,
) -> str | None:
    """The refusal code when the gate needs reviewer authority the actor lacks.

    Elevated gates need `review_elevated_automation` (held by owners, workspace admins and
    through grants); data classes need the actor's clearance for every class on the gate
    (clearances are per workspace and never implied by a role). Only humans hold authority; a
    caller without a Flowgate user (an unlinked chat account) cannot have it verified.
    Applies to every decision, not only approve (reference §11.3). `cleared` is the data
    classes the actor is cleared for when the caller read them already; otherwise they are read
    here (one query, only for gates with data classes).
    """
    if not policy.requires_authority:
        return None
    if actor.user is None:
        return AUTHORITY_REQUIRED
    if not actor.is_human:
        return AUTHORITY_DENIED
    if not set(policy.data_classes) <= set(DATA_CLASSES):
        return AUTHORITY_DENIED  # a class nobody can be cleared for: fail closed
    if policy.data_classes and cleared is None:
        cleared = frozenset(member_clearances(workspace=workspace, user=actor.user))
    for rule in AUTHORITY_RULES:
        if not rule.applies(policy):
            continue
        if rule.data_class is not None:
            if rule.data_class not in cleared:
                return AUTHORITY_DENIED
        elif rule.codename not in held:
            return AUTHORITY_DENIED
    return None
