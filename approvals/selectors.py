"""Scoped reads of gates: tenant and permissions are filtered in the query, before any limit.

`gates_pending` lists the open gates the caller may decide (SPEC §6.4, §6.6) as query-level
conditions, so the list costs the same number of queries however long it is:
- only humans decide gates (agents and the system get an empty list);
- the review permission on the gate's automation: owner, workspace admin, a role that includes
  it (`governance.policy.ROLE_PERMISSIONS`), or a guardian grant to the user or a group; or the
  gate was escalated to the caller (`approvals.policy.escalated_to_condition`);
- reviewer authority, from `approvals.policy.AUTHORITY_RULES`, the table the decision service
  checks: each rule's `gates` condition says which gates need its permission (held by owner,
  admin or grant) or clearance (`governance.services.member_clearances`, one query; personal,
  superusers and admins included).
The people accountable for a run are listed like anyone else: they may rework or cancel its gate
even where separation of duties (`approvals.policy.SEPARATION_RULES`) forbids them to approve
it; `approve_refusal` says so per row, from the same rule table the decision service applies.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest, Gate, GateDecision, GateStatus
from approvals.policy import AUTHORITY_RULES, escalated_to_condition
from automations.ids import is_run_id
from automations.models import (
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
    Run,
    RunStatus,
)
from automations.selectors import of_runs
from governance.actors import Actor
from governance.errors import NotFound
from governance.models import Role
from governance.policy import REVIEW, ROLE_PERMISSIONS
from governance.services import member_clearances


def _granted(actor: Actor, codename: str) -> Q:
    """The automation of the gate's run grants `codename` to the actor or one of its groups."""
    user = actor.user
    to_user = AutomationUserObjectPermission.objects.filter(
        content_object=OuterRef("run__automation"), permission__codename=codename, user=user
    )
    to_group = AutomationGroupObjectPermission.objects.filter(
        content_object=OuterRef("run__automation"),
        permission__codename=codename,
        group__user=user,
    )
    return Q(Exists(to_user)) | Q(Exists(to_group))


def _holds(actor: Actor, codename: str) -> Q | None:
    """Query condition: the actor holds `codename` on the gate's automation; None when its role
    gives it on every automation (no condition needed)."""
    if actor.user.is_superuser or codename in ROLE_PERMISSIONS.get(actor.role, frozenset()):
        return None  # guardian gives superusers every object permission
    return Q(run__automation__created_by=actor.user) | _granted(actor, codename)


def run_to_decide(actor: Actor, run_id: str) -> Run:
    """The run a decision names, in the actor's workspace (404 `AUTOMATION_V2_RUN_NOT_FOUND`
    otherwise, as every run endpoint answers): its key only, since the decision service reads
    the run again under its lock."""
    found = (
        Run.objects.filter(workspace=actor.workspace, run_id=run_id).only("pk")[:1]
        if is_run_id(run_id)
        else ()
    )
    if not found:
        raise NotFound("Run not found", code="AUTOMATION_V2_RUN_NOT_FOUND", runID=run_id)
    return found[0]


def gates_pending(actor: Actor) -> QuerySet[Gate]:
    """Open, unexpired gates of runs awaiting approval in the actor's workspace that the actor
    may decide, newest first, with run, automation and requester joined (no per-row queries)."""
    if not actor.is_human or actor.user is None:
        return Gate.objects.none()
    queryset = Gate.objects.filter(
        workspace=actor.workspace,
        status=GateStatus.OPEN,
        expires_at__gt=timezone.now(),
        run__status=RunStatus.AWAITING_APPROVAL,
        run__automation__deleted_at__isnull=True,
    )
    review = _holds(actor, REVIEW)
    if review is not None:
        queryset = queryset.filter(review | escalated_to_condition(actor))
    cleared = set(member_clearances(workspace=actor.workspace, user=actor.user))
    for rule in AUTHORITY_RULES:
        if rule.data_class is not None:
            if rule.data_class not in cleared:
                queryset = queryset.exclude(rule.gates)
            continue
        holds = _holds(actor, rule.codename)
        if holds is not None:
            queryset = queryset.filter(~rule.gates | holds)
    return queryset.select_related("run__automation", "requested_by").order_by(
        "-requested_at", "-pk"
    )


class ApprovalGateReader:
    """The gates of runs for the run JSON, run lists and admin run page of `automations`
    (`automations.run_gates.GateReader`, registered in `ApprovalsConfig.ready()`)."""

    def run_prefetches(self) -> list[Prefetch]:
        return [
            Prefetch("gates", queryset=Gate.objects.filter(status=GateStatus.OPEN), to_attr="open"),
            Prefetch(
                "gate_decisions",
                queryset=GateDecision.objects.select_related("decided_by", "gate").order_by(
                    "decided_at", "id"
                ),
            ),
        ]

    def history(self, run: Run) -> list[Gate]:
        return list(
            Gate.objects.filter(run=run)
            .order_by("requested_at", "round")
            .prefetch_related(
                Prefetch(
                    "decision_records",
                    queryset=GateDecision.objects.select_related("decided_by").order_by(
                        "decided_at", "id"
                    ),
                )
            )
        )

    def open_gates(self, run_pks: list[int]) -> QuerySet[Gate]:
        return of_runs(Gate.objects.filter(status=GateStatus.OPEN), run_pks)

    def decision_rows(self, run_pks: list[int]) -> QuerySet:
        return (
            of_runs(GateDecision.objects, run_pks)
            .annotate(round=F("gate__round"), decider=F("decided_by__username"))
            .order_by("decided_at", "id")
            .values_list(
                "run_id",
                "node_id",
                "gate_id",
                "decision",
                "reason",
                "decided_at",
                "decider_kind",
                "source",
                "reviewed_digest",
                "round",
                "decider",
                named=True,
            )
        )


# --- approval requests ------------------------------------------------------------------------

MAX_REQUEST_ID = 64
# Roles that see every approval request of their workspace; everyone else (agents and services
# always) sees only their own.
REQUEST_READER_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


def requests_visible(actor: Actor) -> QuerySet[ApprovalRequest]:
    """The approval requests the actor may see, with everything `request_json` reads joined."""
    rows = ApprovalRequest.objects.filter(workspace=actor.workspace).select_related(
        "gate", "run", "requested_by", "decision__decided_by"
    )
    if actor.is_human and actor.role in REQUEST_READER_ROLES:
        return rows
    return rows.filter(requested_by=actor.user) if actor.user is not None else rows.none()


def request_get(actor: Actor, request_id: str) -> ApprovalRequest:
    """One visible request, else 404 (another workspace's, or another principal's for an
    agent, is not found)."""
    request = (
        requests_visible(actor).filter(pk=request_id).first()
        if 0 < len(request_id) <= MAX_REQUEST_ID
        else None
    )
    if request is None:
        raise NotFound("Approval request not found", code="APPROVAL_REQUEST_NOT_FOUND")
    return request
