"""Delegation of review authority (out of office): the services that create, revoke and expire
delegations, and the rule the decision service applies when a delegate decides.

The rules (docs/security.md, separation of duties):
- a member delegates *their own* authority to another human member of the same workspace for a
  period; a delegation to oneself is refused when it is created (and by a database check);
- a delegate whose own authority does not suffice to decide a gate decides with an active
  delegator's: that delegator's review permission (automation roles, grants, this opening's
  escalation) and their clearances, judged exactly as if the delegator decided;
- only where the delegate *also* passes separation of duties, and the delegator too: a
  delegation to the run's requester, or from them, never lets anyone approve their work (refused
  when the decision is made, since who is accountable depends on the run);
- chains are not followed: a delegate never passes on authority that was lent to them;
- every decision made under delegation records both people (`GateDecision.decided_by` and
  `on_behalf_of`, both in the audit event); creating, revoking and the end of a delegation are
  audited (`automation.governance.delegation_created`, `…_revoked`, `…_expired`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.models import Delegation
from approvals.policy import GatePolicy, authority_refusal, escalation_grants
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, FlowgateError, Forbidden, InvalidRequest, NotFound
from governance.models import Membership, PrincipalKind, clearance_codename
from governance.policy import Action, authorize, automation_permissions

TO_SELF = "APPROVALS_DELEGATION_TO_SELF"
DELEGATE_INVALID = "APPROVALS_DELEGATION_DELEGATE_INVALID"
PERIOD_INVALID = "APPROVALS_DELEGATION_PERIOD_INVALID"
NOT_ACTIVE = "APPROVALS_DELEGATION_NOT_ACTIVE"
NOT_FOUND = "APPROVALS_DELEGATION_NOT_FOUND"
HUMANS_ONLY = "APPROVALS_DELEGATION_REQUIRES_HUMAN"
ERROR_CODES = (TO_SELF, DELEGATE_INVALID, PERIOD_INVALID, NOT_ACTIVE, NOT_FOUND, HUMANS_ONLY)
# Long enough for any leave; a delegation is meant to end.
MAX_PERIOD_DAYS = 366
EXPIRY_BATCH = 500


def delegation_json(delegation: Delegation, *, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    return {
        "id": delegation.pk,
        "delegator": delegation.delegator.username,
        "delegate": delegation.delegate.username,
        "starts_at": delegation.starts_at.isoformat(),
        "ends_at": delegation.ends_at.isoformat(),
        "reason": delegation.reason,
        "active": delegation.active(now),
        "revoked_at": delegation.revoked_at.isoformat() if delegation.revoked_at else None,
        "created_at": delegation.created_at.isoformat(),
    }


def delegations_visible(actor: Actor) -> QuerySet[Delegation]:
    """The delegations of the actor's workspace the actor gave or received (all of them for a
    workspace admin), newest first, with both people joined."""
    queryset = Delegation.objects.filter(workspace=actor.workspace).select_related(
        "delegator", "delegate"
    )
    if actor.user is None:
        return queryset.none()
    if not actor.is_workspace_admin:
        queryset = queryset.filter(Q(delegator=actor.user) | Q(delegate=actor.user))
    return queryset.order_by("-created_at", "-id")


def delegation_create(
    *,
    actor: Actor,
    delegate: str,
    ends_at: datetime,
    starts_at: datetime | None = None,
    reason: str = "",
) -> Delegation:
    """Lend the actor's review authority to the member named `delegate` from `starts_at` (now
    when omitted) until `ends_at`. Audited `automation.governance.delegation_created`."""
    if not actor.is_human or actor.user is None:
        raise Forbidden("Only a human member may delegate review authority", code=HUMANS_ONLY)
    now = timezone.now()
    starts_at = starts_at or now
    if ends_at <= max(starts_at, now) or (ends_at - starts_at).days > MAX_PERIOD_DAYS:
        raise InvalidRequest(
            f"ends_at must be after starts_at and now, at most {MAX_PERIOD_DAYS} days later",
            code=PERIOD_INVALID,
            fields={"ends_at": ["Must be in the future, after starts_at."]},
        )
    if delegate == actor.user.username:
        raise InvalidRequest(
            "You cannot delegate review authority to yourself",
            code=TO_SELF,
            fields={"delegate": ["Name another member."]},
        )
    member = (
        Membership.objects.select_related("user")
        .filter(
            workspace=actor.workspace,
            user__username=delegate,
            user__kind=PrincipalKind.HUMAN,
            user__is_active=True,
        )
        .first()
    )
    if member is None:
        raise InvalidRequest(
            "The delegate must be an active human member of this workspace",
            code=DELEGATE_INVALID,
            fields={"delegate": ["No such human member in this workspace."]},
        )
    with transaction.atomic():
        delegation = Delegation.objects.create(
            workspace=actor.workspace,
            delegator=actor.user,
            delegate=member.user,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=actor.user,
        )
        _audit(delegation, actor, "automation.governance.delegation_created")
    return delegation


def delegation_revoke(*, actor: Actor, delegation_id: int) -> Delegation:
    """End a delegation now: its delegator, its delegate or a workspace admin may. 404 outside
    the actor's view, 409 when it is already revoked or over. Audited
    `automation.governance.delegation_revoked`."""
    with transaction.atomic():
        delegation = (
            delegations_visible(actor)
            .select_for_update(of=("self",))
            .filter(pk=delegation_id)
            .first()
        )
        if delegation is None:
            raise NotFound("Delegation not found", code=NOT_FOUND, delegationID=delegation_id)
        if not actor.is_human:
            raise Forbidden("Only a human member may revoke a delegation", code=HUMANS_ONLY)
        now = timezone.now()
        if delegation.revoked_at is not None or delegation.ends_at <= now:
            raise Conflict(
                "This delegation is already revoked or over", code=NOT_ACTIVE, **_ids(delegation)
            )
        delegation.revoked_at = now
        delegation.revoked_by = actor.user
        # A revoked delegation's end is this audit event; the expiry sweep skips it.
        delegation.expiry_audited_at = now
        delegation.save(update_fields=["revoked_at", "revoked_by", "expiry_audited_at"])
        _audit(delegation, actor, "automation.governance.delegation_revoked")
    return delegation


def delegations_expire(*, now: datetime) -> int:
    """Beat: audit the end of every delegation whose period is over (once each,
    `automation.governance.delegation_expired`); returns how many."""
    done = 0
    with transaction.atomic():
        due = list(
            Delegation.objects.select_for_update(skip_locked=True)
            .select_related("workspace", "delegator", "delegate")
            .filter(ends_at__lte=now, expiry_audited_at__isnull=True)
            .order_by("ends_at", "pk")[:EXPIRY_BATCH]
        )
        for delegation in due:
            delegation.expiry_audited_at = now
            delegation.save(update_fields=["expiry_audited_at"])
            _audit(
                delegation,
                Actor.system(delegation.workspace, "delegation_expiry"),
                "automation.governance.delegation_expired",
            )
            done += 1
    return done


def delegated_authority(
    *, actor: Actor, run, gate, policy: GatePolicy, now: datetime
) -> tuple[Actor, frozenset[str]] | None:
    """The delegator (as an actor, on the actor's surface) whose authority lets `actor` decide
    `gate` of `run`, with the permissions they hold there; None when no active delegation to the
    actor gives enough. The first delegation, oldest first, whose delegator would pass the
    review permission and reviewer authority themselves. Separation of duties is the caller's
    to check, for both people."""
    if not actor.is_human or actor.user is None:
        return None
    delegators = [
        d.delegator_id
        for d in Delegation.objects.filter(
            workspace_id=run.workspace_id,
            delegate=actor.user,
            revoked_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        ).order_by("created_at", "pk")
    ]
    if not delegators:
        return None
    members = {
        m.user_id: m
        for m in Membership.objects.select_related("user").filter(
            workspace_id=run.workspace_id,
            user_id__in=delegators,
            user__kind=PrincipalKind.HUMAN,
            user__is_active=True,
        )
    }
    for user_id in delegators:
        if user_id not in members:
            continue
        member = members[user_id]
        lender = Actor(
            kind=member.user.kind,
            workspace=run.workspace,
            user=member.user,
            role=member.role,
            source=actor.source,
        )
        held = automation_permissions(lender, run.automation, clearances=policy.data_classes)
        if gate is not None:
            held |= escalation_grants(gate, lender)
        try:
            authorize(lender, Action.REVIEW, run.automation, audit=False, held=held)
        except FlowgateError:
            continue
        cleared = frozenset(c for c in policy.data_classes if clearance_codename(c) in held)
        if (
            authority_refusal(
                actor=lender, policy=policy, held=held, workspace=run.workspace, cleared=cleared
            )
            is None
        ):
            return lender, held
    return None


def _ids(delegation: Delegation) -> dict:
    return {
        "delegationID": delegation.pk,
        "delegator": delegation.delegator.username,
        "delegate": delegation.delegate.username,
    }


def _audit(delegation: Delegation, actor: Actor, event_type: str) -> None:
    audit_record(
        workspace=delegation.workspace,
        event_type=event_type,
        actor=actor,
        payload={
            **_ids(delegation),
            "startsAt": delegation.starts_at.isoformat(),
            "endsAt": delegation.ends_at.isoformat(),
            "revokedAt": delegation.revoked_at.isoformat() if delegation.revoked_at else None,
            "reason": delegation.reason or None,
        },
    )
