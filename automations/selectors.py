"""Scoped reads of automations: tenant filtering happens in the query, before any limit.

A run's gates and decisions (shown by the run JSON, run lists and the admin's run page) are read
through the gate reader the approvals app registers (`automations.run_gates`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import BigIntegerField, BooleanField, F, Func, QuerySet, Value
from django.db.models.fields.json import KeyTransform

from automations.ids import is_automation_id, is_run_id
from automations.models import (
    ATTENTION_STATUSES,
    Automation,
    AutomationGroupObjectPermission,
    AutomationUserObjectPermission,
    Run,
    RunNode,
    RunStatus,
)
from automations.run_gates import gate_reader
from governance.actors import Actor
from governance.errors import AutomationNotFound, NotFound
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
        *gate_reader().run_prefetches(),
    )


def run_gate_history(run: Run) -> tuple[list[Any], Any | None]:
    """Every opening of the run's gates, oldest first, with their decisions (two queries), and
    the opening the run waits on now (None unless it is awaiting approval)."""
    gates = gate_reader().history(run)
    waiting = run.status == RunStatus.AWAITING_APPROVAL
    open_gate = next((g for g in gates if waiting and g.closed_at is None), None)
    return gates, open_gate


def runs_visible(actor: Actor):
    """Runs of the actor's workspace (every role can view every automation of it)."""
    return Run.objects.filter(workspace=actor.workspace)


def runs_needing_attention(workspace_ids) -> QuerySet[Run]:
    """Failed, blocked, paused and awaiting runs of these workspaces (every role views every
    run of its workspace), most recently changed first, with automation and workspace joined."""
    return (
        Run.objects.filter(workspace_id__in=workspace_ids, status__in=ATTENTION_STATUSES)
        .select_related("automation", "workspace__organization")
        .order_by("-updated_at", "-id")
    )


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


# The run columns a list item renders (`automations.api.run_json.render_run`), read as plain
# rows: building model instances for a page of runs, their nodes and lifecycle events (about
# 3,000 of them for 200 runs) dominated a list's cost (docs/performance.md, run list).
RUN_ROW_COLUMNS = (
    "pk",
    "run_id",
    "status",
    "trigger_type",
    "inputs",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "pause_reason",
    "resume_reason",
    "detail",
    "stop_kind",
    "stop_reason",
    "version",
    "last_failure",
)
RUN_ROW_RELATED = {
    "automation_key": F("automation__automation_id"),
    "requester": F("requested_by__username"),
    # Only what the JSON reads from the snapshot, not its agents and execution policy.
    "flow_nodes": KeyTransform("nodes", KeyTransform("flow", "automation_snapshot")),
    "automation_version": KeyTransform("version", "automation_snapshot"),
}


@dataclass
class RunRelations:
    """The rows a page of runs renders besides its own, grouped by run pk."""

    nodes: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    open_gates: dict[int, Any] = field(default_factory=dict)
    decisions: dict[int, list] = field(default_factory=lambda: defaultdict(list))


def of_runs(queryset: QuerySet, run_pks: list[int]) -> QuerySet:
    """`queryset` limited to rows of these runs. On PostgreSQL the ids travel as one array
    (`run_id = ANY(%s)`): as `IN (…)` with 200 parameters, each query of a list page spent
    about a millisecond adapting them."""
    if connection.vendor != "postgresql":
        return queryset.filter(run_id__in=run_pks)
    ids = Value(run_pks, output_field=ArrayField(BigIntegerField()))
    return queryset.filter(
        Func(
            F("run_id"),
            ids,
            arg_joiner=" = ANY(",
            template="(%(expressions)s))",
            output_field=BooleanField(),
        )
    )


def run_relations(run_pks: list[int]) -> RunRelations:
    """Nodes, open gates and decisions of the given runs: three queries whatever their number,
    rows rather than instances except the (few) open gates. (Their lifecycle events, the bulk
    of a page, are read by `run_json.lifecycle_histories`, rendered by the database.)"""
    related = RunRelations()
    if not run_pks:
        return related
    for row in of_runs(RunNode.objects, run_pks).values_list(
        "run_id", "node_id", "state", "attempts", "output", "feedback", named=True
    ):
        related.nodes[row.run_id].append(row)
    reader = gate_reader()
    for gate in reader.open_gates(run_pks):
        related.open_gates.setdefault(gate.run_id, gate)
    for row in reader.decision_rows(run_pks):
        related.decisions[row.run_id].append(row)
    return related


def runs_list(
    actor: Actor,
    *,
    automation: Automation | None = None,
    status: str | None = None,
    automation_id: str | None = None,
) -> QuerySet[Run]:
    """Rows of the actor's workspace's runs, newest first (render a page with
    `run_json.runs_page_json`, which reads their relations in four more queries).

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
    return (
        queryset.annotate(**RUN_ROW_RELATED)
        .values_list(*RUN_ROW_COLUMNS, *RUN_ROW_RELATED, named=True)
        .order_by("-created_at", "-id")
    )


def run_for_action(actor: Actor, run_id: str):
    """The run (with its automation) a mutation acts on."""
    return _one_run(
        runs_visible(actor).select_related("automation", "workspace__organization"), run_id
    )
