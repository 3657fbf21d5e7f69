"""Standing approvals: a human approves in advance, for a while, one action of one agent.

A reviewer who keeps approving the same small action ("send a payment of at most 100 EUR to a
known payee") grants the agent a standing approval instead: the action, a JSON Schema the
arguments must satisfy (`constraints`), the most policy it covers (`policy`: eligibility, risk
tier, data classes), an end (`expires_at`, at most `MAX_PERIOD_DAYS` ahead), optionally a
number of uses, and a reason. A request the agent makes that matches is approved the moment it
is made, with the surface `standing`; any other goes to humans as before.

The rules (docs/agents.md, "Standing approvals"):
- only a verified human member grants, and only what they could approve themselves: the review
  permission on the workspace's approval requests and the reviewer authority for `policy`
  (elevated review, a clearance per data class), judged when granting (403, audited);
- separation of duties: the grantor is neither the grantee nor accountable for it (a human who
  granted the agent anything, `approvals.request_automation.accountable_grantors`), so a
  standing approval cannot launder self-approval (403, audited);
- each use is a decision by the grantor through the one decision service
  (`approvals.decisions.gate_decide`, surface `standing`), so every rule is judged again at that
  moment — a grantor who lost the role, a clearance or their membership, or who has since
  granted the agent something, approves nothing, and the request waits for a human (audited
  `approvals.standing_approval.not_applied` with the refusal's code);
- constraints that cannot be applied (a `$ref` resolving to nothing) cover nothing: the
  request waits for a human rather than failing;
- never for what needs a human now: a request with a `response_schema` (a question only a person
  answers) or a quorum (the two-person rule), or whose policy exceeds the grant's;
- every use is audited (`approvals.standing_approval.used`, after the decision's own
  `automation.governance.gate_decided`) and visible: the request names the grant, the grant
  counts its uses, and `GET /api/approvals/requests?standing_approval=<id>` lists them;
- revocable at once by the grantor or a workspace admin (`…_revoked`); a revoked, expired or
  used-up grant approves nothing.

Concurrency: the constraints are judged before the request's transaction (`standing_covering`:
how long a JSON Schema takes is the grantee's to choose, never while a lock is held); then a
request locks the grantee's covering grants (in the request's transaction, after the backing
automation and run: the lock order of a run start), so `max_uses` holds across concurrent
requests and a revocation either precedes a use or follows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.models import ApprovalRequest, Gate, StandingApproval, Surface
from approvals.policy import MESSAGES, SELF_APPROVAL_FORBIDDEN, GatePolicy, authority_refusal
from approvals.request_answers import canonical_digest
from approvals.request_automation import accountable_grantors, requests_automation
from approvals.request_policy import parse_grant_policy, policy_within
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, FlowgateError, Forbidden, InvalidRequest, NotFound
from governance.json_schemas import satisfies, schema_problem
from governance.models import Membership, PrincipalKind, Role, clearance_codename
from governance.policy import Action, authorize, automation_permissions, deny

NOT_FOUND = "APPROVALS_STANDING_NOT_FOUND"
INVALID = "APPROVALS_STANDING_INVALID"
NOT_ACTIVE = "APPROVALS_STANDING_NOT_ACTIVE"
HUMANS_ONLY = "APPROVALS_STANDING_REQUIRES_HUMAN"
REVOKE_FORBIDDEN = "APPROVALS_STANDING_REVOKE_FORBIDDEN"
ERROR_CODES = (
    NOT_FOUND,
    INVALID,
    NOT_ACTIVE,
    HUMANS_ONLY,
    REVOKE_FORBIDDEN,
    SELF_APPROVAL_FORBIDDEN,
)
# A standing approval is meant to end; renewing one is a fresh, audited decision.
MAX_PERIOD_DAYS = 90
GRANTEE_KINDS = (PrincipalKind.AGENT, PrincipalKind.SERVICE)
# Who sees every grant of the workspace; others see those granted to or by them.
READER_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


def active_condition(now: datetime) -> Q:
    """The grants that approve requests at `now` (`StandingApproval.active`, as a query)."""
    return Q(revoked_at__isnull=True, expires_at__gt=now) & (
        Q(max_uses__isnull=True) | Q(use_count__lt=F("max_uses"))
    )


def standing_json(grant: StandingApproval, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "id": grant.pk,
        "action": grant.action,
        "grantee": grant.grantee.username,
        "constraints": grant.constraints,
        "policy": grant.policy,
        "reason": grant.reason,
        "granted_by": grant.granted_by.username,
        "created_at": grant.created_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "max_uses": grant.max_uses,
        "use_count": grant.use_count,
        "active": grant.active(now),
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "revoked_by": grant.revoked_by.username if grant.revoked_by else None,
        "revoke_reason": grant.revoke_reason or None,
    }


def standings_visible(actor: Actor) -> QuerySet[StandingApproval]:
    """The grants of the actor's workspace the actor may see, newest first: every one for a
    reviewer or admin, else those granted to or by the actor (an agent sees what it may do
    without asking)."""
    queryset = StandingApproval.objects.filter(workspace=actor.workspace).select_related(
        "grantee", "granted_by", "revoked_by"
    )
    if actor.user is None:
        return queryset.none()
    if not (actor.is_human and actor.role in READER_ROLES):
        queryset = queryset.filter(Q(grantee=actor.user) | Q(granted_by=actor.user))
    return queryset.order_by("-created_at", "-id")


def standing_get(actor: Actor, standing_id: str) -> StandingApproval:
    grant = standings_visible(actor).filter(pk=standing_id[:64]).first()
    if grant is None:
        raise NotFound(
            "Standing approval not found", code=NOT_FOUND, standingApprovalID=standing_id
        )
    return grant


def standing_create(*, actor: Actor, data: Mapping[str, Any]) -> StandingApproval:
    """Grant `data["grantee"]` a standing approval of `data["action"]` as the actor (see the
    module docstring for who may). `data` is the API body, its shapes checked by the input
    serializer; 400 lists every problem with nothing written. Audited
    `approvals.standing_approval.granted`."""
    if not actor.is_human or actor.user is None:
        raise Forbidden("Only a human member may grant a standing approval", code=HUMANS_ONLY)
    fields: dict[str, list[str]] = {}

    def report(field: str, message: str) -> None:
        fields.setdefault(field, []).append(message)

    grantee = _grantee(actor, data["grantee"], report)
    problem = schema_problem(data["constraints"])
    if problem is not None:
        report("constraints", problem)
    policy = parse_grant_policy(data.get("policy"), report)
    now = timezone.now()
    expires_at = data["expires_at"]
    if not now < expires_at <= now + timedelta(days=MAX_PERIOD_DAYS):
        report("expires_at", f"Must be in the future, at most {MAX_PERIOD_DAYS} days ahead.")
    if fields:
        raise InvalidRequest("Invalid standing approval", code=INVALID, fields=fields)
    _authorise_grantor(actor, grantee, GatePolicy.of(policy))
    with transaction.atomic():
        grant = StandingApproval.objects.create(
            id=f"sa-{uuid.uuid4().hex}",
            workspace=actor.workspace,
            action=data["action"],
            grantee=grantee.user,
            constraints=data["constraints"],
            policy=policy,
            reason=data["reason"].strip(),
            max_uses=data.get("max_uses"),
            granted_by=actor.user,
            expires_at=expires_at,
        )
        _audit(grant, actor, "approvals.standing_approval.granted")
    return grant


def standing_revoke(*, actor: Actor, standing_id: str, reason: str = "") -> StandingApproval:
    """End a grant now: its grantor or a workspace admin may (403 for anyone else who sees it),
    409 when it is already revoked or over. Audited `approvals.standing_approval.revoked`."""
    with transaction.atomic():
        grant = (
            standings_visible(actor)
            .select_for_update(of=("self",))
            .filter(pk=standing_id[:64])
            .first()
        )
        if grant is None:
            raise NotFound(
                "Standing approval not found", code=NOT_FOUND, standingApprovalID=standing_id
            )
        if not actor.is_human or not (
            actor.is_workspace_admin or grant.granted_by_id == actor.user.pk
        ):
            raise Forbidden(
                "Only its grantor or a workspace admin may revoke a standing approval",
                code=REVOKE_FORBIDDEN,
            )
        now = timezone.now()
        if grant.revoked_at is not None or grant.expires_at <= now:
            raise Conflict(
                "This standing approval is already revoked or over",
                code=NOT_ACTIVE,
                standingApprovalID=grant.pk,
            )
        grant.revoked_at = now
        grant.revoked_by = actor.user
        grant.revoke_reason = reason.strip()
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        _audit(grant, actor, "approvals.standing_approval.revoked")
    return grant


def standing_covering(*, actor: Actor, action: str, arguments: Any) -> frozenset[str]:
    """The ids of the actor's active grants of `action` whose `constraints` the `arguments`
    satisfy, read before the request's transaction (`request_create`).

    Judged outside it because the time a JSON Schema takes grows with the arguments, which are
    the grantee's to choose (linear since patterns run on RE2, `governance.json_schemas`, but
    still not to be spent while the request holds the workspace's approval-requests lock, which
    every other request of the workspace waits for). A grant's constraints never change, so the
    answer still holds under the lock, where `standing_apply` re-reads the grants it names."""
    if actor.is_human or actor.user is None:
        return frozenset()  # grants are to agents and services only
    grants = StandingApproval.objects.filter(
        active_condition(timezone.now()),
        workspace=actor.workspace,
        grantee=actor.user,
        action=action,
    ).only("pk", "constraints")
    return frozenset(g.pk for g in grants if satisfies(g.constraints, arguments))


def standing_apply(
    *, actor: Actor, request: ApprovalRequest, gate: Gate, covering: frozenset[str]
) -> None:
    """Approve `request`, just made by `actor` in the caller's transaction, with the first
    grant of `covering` (`standing_covering`) still active and whose policy covers the
    request's, oldest first; leave it pending when none does (or none of the matching grants'
    grantors may approve it any more)."""
    if actor.is_human or actor.user is None or request.response_schema is not None:
        return  # grants are to agents and services only
    if not covering:
        return
    now = timezone.now()
    grants = (
        StandingApproval.objects.select_for_update(of=("self",))
        .select_related("grantee", "granted_by")
        .filter(active_condition(now), workspace=actor.workspace, grantee=actor.user)
        .filter(action=request.action, pk__in=covering)
        .order_by("created_at", "pk")
    )
    for grant in grants:
        if not policy_within(gate.policy, grant.policy):
            continue
        if _use(grant, request, gate):
            return


def _use(grant: StandingApproval, request: ApprovalRequest, gate: Gate) -> bool:
    """Decide `request` as the grantor through the decision service; True when it approved."""
    grantor = (
        Membership.objects.select_related("user", "workspace__organization")
        .filter(workspace_id=grant.workspace_id, user_id=grant.granted_by_id, user__is_active=True)
        .first()
    )
    workspace = request.workspace
    if grantor is None:
        _not_applied(grant, request, "APPROVALS_STANDING_GRANTOR_NOT_MEMBER")
        return False
    try:
        gate_decide(
            actor=Actor.for_member(grantor, source=Surface.STANDING),
            run=request.run,
            decision="approve",
            reason=f"Standing approval {grant.pk}: {grant.reason}",
            approval_request_id=gate.pk,
            source=Surface.STANDING,
        )
    except FlowgateError as refusal:  # audited by the service, in this transaction
        _not_applied(grant, request, refusal.code)
        return False
    grant.use_count += 1
    grant.save(update_fields=["use_count"])
    ApprovalRequest.objects.filter(pk=request.pk).update(standing_approval=grant)
    audit_record(
        workspace=workspace,
        event_type="approvals.standing_approval.used",
        actor=Actor.for_member(grantor, source=Surface.STANDING),
        payload={
            **_ids(grant),
            "requestID": request.pk,
            "gateID": gate.pk,
            "argumentsDigest": canonical_digest(request.arguments),
            "useCount": grant.use_count,
        },
    )
    return True


def _not_applied(grant: StandingApproval, request: ApprovalRequest, code: str) -> None:
    audit_record(
        workspace=request.workspace,
        event_type="approvals.standing_approval.not_applied",
        actor=Actor.system(request.workspace, "standing_approval"),
        payload={**_ids(grant), "requestID": request.pk, "code": code},
    )


def _grantee(actor: Actor, username: str, report) -> Membership | None:
    """The active agent or service member named `username`, else a reported problem."""
    member = (
        Membership.objects.select_related("user")
        .filter(
            workspace=actor.workspace,
            user__username=username,
            user__kind__in=GRANTEE_KINDS,
            user__is_active=True,
        )
        .first()
    )
    if member is None:
        report("grantee", "No active agent or service member of this workspace has this name.")
    return member


def _authorise_grantor(actor: Actor, grantee: Membership, policy: GatePolicy) -> None:
    """403 (audited `automation.governance.denied`) unless the actor could approve, now, a
    request of `grantee` under `policy`."""
    automation = _requests_automation_of(actor)
    held = automation_permissions(actor, automation, clearances=policy.data_classes)
    try:
        authorize(actor, Action.REVIEW, automation, audit=False, held=held)
    except Forbidden as refusal:
        code, message = refusal.code, refusal.message
    else:
        code = authority_refusal(
            actor=actor,
            policy=policy,
            held=held,
            workspace=actor.workspace,
            cleared=frozenset(c for c in policy.data_classes if clearance_codename(c) in held),
        )
        if code is None and str(actor.user.pk) in accountable_grantors(Actor.for_member(grantee)):
            code = SELF_APPROVAL_FORBIDDEN
        message = MESSAGES.get(code, "")
    if code is not None:
        deny(
            actor,
            action="grant_standing_approval",
            automation_id=automation.automation_id,
            code=code,
            message=message,
        )


def _requests_automation_of(actor: Actor):
    with transaction.atomic():
        return requests_automation(actor)


def _ids(grant: StandingApproval) -> dict[str, Any]:
    return {
        "standingApprovalID": grant.pk,
        "action": grant.action,
        "grantee": grant.grantee.username,
        "grantedBy": grant.granted_by.username,
    }


def _audit(grant: StandingApproval, actor: Actor, event_type: str) -> None:
    audit_record(
        workspace=grant.workspace,
        event_type=event_type,
        actor=actor,
        payload={
            **_ids(grant),
            "constraints": grant.constraints,
            "policy": grant.policy,
            "expiresAt": grant.expires_at.isoformat(),
            "maxUses": grant.max_uses,
            "reason": grant.reason,
            "revokedAt": grant.revoked_at.isoformat() if grant.revoked_at else None,
            "revokeReason": grant.revoke_reason or None,
        },
    )
