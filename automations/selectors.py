"""Scoped reads of automations: tenant filtering happens in the query, before any limit."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from approvals.models import Gate, GateDecision, GateStatus
from automations.ids import is_automation_id, is_run_id
from automations.models import (
    Automation,
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
    Run,
    RunNode,
)
from governance.actors import Actor
from governance.errors import AutomationNotFound, NotFound
from governance.models import User
from governance.policy import GRANTABLE, Action, authorize


def automations_visible(actor: Actor) -> QuerySet[Automation]:
    """Every live automation of the actor's workspace (all roles include `view`)."""
    return Automation.objects.filter(
        workspace=actor.workspace, deleted_at__isnull=True
    ).select_related("created_by", "workspace__organization")


def automation_get(actor: Actor, automation_id: str, *, action: Action = Action.VIEW) -> Automation:
    """The automation if the actor may perform `action` on it; 404 when invisible, else 403.

    A read: a refusal here is not audited (GETs never write, SPEC §10.11). Services authorise
    their mutation again, audited. An id no automation can have is "not found" without a query.
    """
    if not is_automation_id(automation_id):
        raise AutomationNotFound(automation_id)
    automation = automations_visible(actor).filter(automation_id=automation_id).first()
    if automation is None:
        raise AutomationNotFound(automation_id)
    authorize(actor, action, automation, audit=False)
    return automation


def automation_grants(automation: Automation) -> list[dict]:
    """The guardian grants on one automation as API rows (two queries, whatever their number)."""
    short = {codename: name for name, codename in GRANTABLE.items()}
    rows = [
        grant_json(
            f"u{row.pk}",
            short.get(row.permission.codename, row.permission.codename),
            user=row.user.username,
        )
        for row in AutomationUserObjectPermission.objects.filter(content_object=automation)
        .select_related("permission", "user")
        .order_by("pk")
    ]
    rows += [
        grant_json(
            f"g{row.pk}",
            short.get(row.permission.codename, row.permission.codename),
            group=row.group.name,
        )
        for row in AutomationGroupObjectPermission.objects.filter(content_object=automation)
        .select_related("permission", "group")
        .order_by("pk")
    ]
    return rows


def grant_json(grant_id: str, permission: str, *, user=None, group=None) -> dict:
    return {"grant_id": grant_id, "permission": permission, "user": user, "group": group}


def runs_with_state(queryset):
    """Runs with everything their JSON needs, in a constant number of queries (1 + 4)."""
    return queryset.select_related(
        "automation", "requested_by", "workspace__organization"
    ).prefetch_related(
        "nodes",
        "lifecycle_events",
        Prefetch("gates", queryset=Gate.objects.filter(status=GateStatus.OPEN), to_attr="open"),
        Prefetch(
            "gate_decisions",
            queryset=GateDecision.objects.select_related("decided_by", "gate").order_by(
                "decided_at", "id"
            ),
        ),
    )


def runs_visible(actor: Actor):
    """Runs of the actor's workspace (every role can view every automation of it)."""
    return Run.objects.filter(workspace=actor.workspace)


def _one_run(queryset, run_id: str):
    """The run `run_id` from `queryset`, or 404 `AUTOMATION_V2_RUN_NOT_FOUND` — the same answer
    for a missing run and another workspace's, and no query for an id no run can have."""
    run = queryset.filter(run_id=run_id).first() if is_run_id(run_id) else None
    if run is None:
        raise NotFound("Run not found", code="AUTOMATION_V2_RUN_NOT_FOUND", runID=run_id)
    return run


def run_get(actor: Actor, run_id: str):
    """One run with everything its JSON needs."""
    return _one_run(runs_with_state(runs_visible(actor)), run_id)


def _columns_except(model, keep: tuple[str, ...], prefix: str = "") -> list[str]:
    return [
        f"{prefix}{field.name}"
        for field in model._meta.concrete_fields
        if not field.primary_key and field.name not in keep
    ]


# Columns a run's JSON (`automations.api.run_json`) never reads, left out of list pages: the
# lease bookkeeping, every automation column but its id (a page of one automation's runs would
# otherwise decode its flow 200 times), the requester's profile. Reading one of them later
# would cost a query per run, which the list tests' query counts (2 vs 25 runs) catch.
RUN_LIST_DEFERRED = (
    "lease_owner",
    "lease_expires_at",
    "lease_epoch",
    "heartbeat_at",
    *_columns_except(Automation, ("automation_id",), "automation__"),
    *_columns_except(User, ("username",), "requested_by__"),
    "workspace__name",
    "workspace__created_at",
    "workspace__organization__name",
    "workspace__organization__created_at",
)
RUN_NODE_LIST_COLUMNS = ("run", "node_id", "state", "attempts", "output")


def runs_with_list_state(queryset: QuerySet[Run]) -> QuerySet[Run]:
    """`runs_with_state` for pages of runs: the same relations in the same 1 + 4 queries, but
    only the columns the run JSON reads, since building model instances (about 3,000 for a page
    of 200 runs with their nodes and lifecycle events) dominates a list's cost
    (docs/performance.md, run list). Keep its relations in step with `runs_with_state`: one
    missing here costs a query per run, which the list tests' query counts catch."""
    return (
        queryset.select_related("automation", "requested_by", "workspace__organization")
        .defer(*RUN_LIST_DEFERRED)
        .prefetch_related(
            Prefetch("nodes", queryset=RunNode.objects.only(*RUN_NODE_LIST_COLUMNS)),
            "lifecycle_events",
            Prefetch("gates", queryset=Gate.objects.filter(status=GateStatus.OPEN), to_attr="open"),
            Prefetch(
                "gate_decisions",
                queryset=GateDecision.objects.select_related("decided_by", "gate").order_by(
                    "decided_at", "id"
                ),
            ),
        )
    )


def runs_list(
    actor: Actor,
    *,
    automation: Automation | None = None,
    status: str | None = None,
    automation_id: str | None = None,
) -> QuerySet[Run]:
    """Runs of the actor's workspace, newest first, with everything their JSON needs.

    The workspace and every filter are in the WHERE clause, so a caller's limit (a slice or
    `keyset_page`) applies to this tenant's matching runs only (SPEC §10.11), and a page costs
    the same five queries whatever its size. `automation_id` matches by the client-facing id,
    so the runs of a deleted automation and of its successor under the same id both match.
    """
    queryset = runs_visible(actor)
    if automation is not None:
        queryset = queryset.filter(automation=automation)
    if status is not None:
        queryset = queryset.filter(status=status)
    if automation_id is not None:
        queryset = queryset.filter(automation__automation_id=automation_id)
    return runs_with_list_state(queryset).order_by("-created_at", "-id")


def run_for_action(actor: Actor, run_id: str):
    """The run (with its automation) a mutation acts on."""
    return _one_run(
        runs_visible(actor).select_related("automation", "workspace__organization"), run_id
    )
