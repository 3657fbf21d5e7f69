"""The run JSON (the original's field names), composed from prefetched rows.

`run_json` renders a run from `selectors.runs_with_state` (no further queries);
`selectors.runs_page_json` renders a page of runs from plain rows through the same
`render_run`, so a list item and the run's detail are the same JSON.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import BigIntegerField, F, Func, Value
from django.db.models.functions import JSONObject, NullIf

from automations import selectors
from automations.api.serializers import to_ms
from automations.flow import descendants
from automations.models import LifecycleEvent, NodeState, Run, RunStatus

PENDING_STATES = frozenset({NodeState.PENDING, NodeState.RUNNING})
DONE_STATES = frozenset({NodeState.COMPLETED, NodeState.SKIPPED})


def approval_url(gate_id: str) -> str:
    return f"{settings.FLOWGATE_PUBLIC_URL.rstrip('/')}/approvals/{gate_id}/"


def gate_json(gate) -> dict[str, Any]:
    return {
        "node_id": gate.node_id,
        "approval_request_id": gate.id,
        "transition_id": gate.transition_id,
        "round": gate.round,
        "title": gate.title,
        "instructions": gate.instructions,
        "decisions": gate.decisions,
        "rework_targets": gate.rework_targets,
        "upstream_node_ids": gate.upstream_node_ids,
        "policy": gate.policy,
        "expiry_policy": gate.expiry_policy,
        "reviewed_digest": gate.reviewed_digest,
        "requested_at_ms": to_ms(gate.requested_at),
        "expires_at_ms": to_ms(gate.expires_at),
        "approval_url": approval_url(gate.id),
        "quorum": gate.quorum or None,
    }


def decision_json(
    decision, *, round: int, decided_by: str | None, on_behalf_of: str | None
) -> dict[str, Any]:
    """One gate_history entry; `round`, `decided_by` and `on_behalf_of` (usernames) come from
    the decision's gate and people, whether read as related instances or as columns of a row."""
    return {
        "node_id": decision.node_id,
        "approval_request_id": decision.gate_id,
        "round": round,
        "decision": decision.decision,
        "reason": decision.reason or None,
        "decided_at_ms": to_ms(decision.decided_at),
        "decided_by": {
            "kind": decision.decider_kind,
            "actor_id": decided_by,
            "source": decision.source,
        },
        "on_behalf_of": on_behalf_of,
        "settles": decision.settles,
        "reviewed_digest": decision.reviewed_digest or None,
    }


def lifecycle_json(event) -> dict[str, Any]:
    """One lifecycle_history entry (`LIFECYCLE_JSON_SQL` is the same, built by PostgreSQL)."""
    return {
        "event": event.event,
        "recorded_at_ms": to_ms(event.at),
        "reason": event.reason or None,
        "stop_kind": event.stop_kind or None,
        "metadata": event.metadata,
    }


# `to_ms` exactly: Python's `datetime.timestamp()` is the correctly rounded float of the exact
# epoch seconds, as is PostgreSQL's numeric epoch cast to float8; the product and the floor
# (`int()` of a positive float) then agree bit for bit.
_EPOCH_MS_SQL = "floor(extract(epoch from %(expressions)s)::float8 * 1000)::bigint"
LIFECYCLE_JSON_SQL = JSONObject(
    event="event",
    recorded_at_ms=Func(F("at"), template=_EPOCH_MS_SQL, output_field=BigIntegerField()),
    reason=NullIf("reason", Value("")),
    stop_kind=NullIf("stop_kind", Value("")),
    metadata="metadata",
)


def lifecycle_histories(
    run_pks: list[int], *, in_database: bool | None = None
) -> dict[int, list[dict[str, Any]]]:
    """The lifecycle_history of each run, in one query. On PostgreSQL the database renders
    each run's list (one JSON value per run instead of a row per event: the events are most of
    a list page's rows, docs/performance.md); elsewhere (the embedded SQLite default) rows are
    rendered here. `in_database=False` forces the latter (the tests compare both)."""
    events = selectors.of_runs(LifecycleEvent.objects, run_pks)
    if in_database is None:
        in_database = connection.vendor == "postgresql"
    if not in_database:
        histories = defaultdict(list)
        rows = events.order_by("at", "id").values_list(
            "run_id", "event", "at", "reason", "stop_kind", "metadata", named=True
        )
        for row in rows:
            histories[row.run_id].append(lifecycle_json(row))
        return histories
    return dict(
        events.order_by()
        .values("run_id")
        .annotate(history=JSONBAgg(LIFECYCLE_JSON_SQL, order_by=("at", "id")))
        .values_list("run_id", "history")
    )


def run_json(run: Run) -> dict[str, Any]:
    """The JSON of one run instance whose relations are prefetched (`selectors.run_get`)."""
    flow_nodes = (run.automation_snapshot.get("flow") or {}).get("nodes", [])
    return render_run(
        run,
        automation_id=run.automation.automation_id,
        workspace=run.workspace.path,
        requested_by=run.requested_by.username if run.requested_by else None,
        flow_nodes=flow_nodes,
        automation_version=run.automation_snapshot.get("version"),
        nodes=run.nodes.all(),
        open_gate=run.open[0] if run.open else None,
        gate_history=[
            decision_json(
                d,
                round=d.gate.round,
                decided_by=d.decided_by.username if d.decided_by else None,
                on_behalf_of=d.on_behalf_of.username if d.on_behalf_of else None,
            )
            for d in run.gate_decisions.all()
        ],
        lifecycle_history=[lifecycle_json(e) for e in run.lifecycle_events.all()],
    )


def runs_page_json(rows, *, workspace: str) -> list[dict[str, Any]]:
    """The JSON of a page of `selectors.runs_list` rows (all of `workspace`, a path), their
    relations read in four queries whatever the page's size."""
    run_pks = [row.pk for row in rows]
    related = selectors.run_relations(run_pks)
    histories = lifecycle_histories(run_pks) if run_pks else {}
    return [
        render_run(
            row,
            automation_id=row.automation_key,
            workspace=workspace,
            requested_by=row.requester,
            flow_nodes=row.flow_nodes or [],
            automation_version=row.automation_version,
            nodes=related.nodes.get(row.pk, ()),
            open_gate=related.open_gates.get(row.pk),
            gate_history=[
                decision_json(d, round=d.round, decided_by=d.decider, on_behalf_of=d.delegator)
                for d in related.decisions.get(row.pk, ())
            ],
            lifecycle_history=histories.get(row.pk, []),
        )
        for row in rows
    ]


def render_run(
    run,
    *,
    automation_id: str,
    workspace: str,
    requested_by: str | None,
    flow_nodes: list[dict],
    automation_version,
    nodes,
    open_gate,
    gate_history: list[dict],
    lifecycle_history: list[dict],
) -> dict[str, Any]:
    """The run JSON from plain values: `run` and `nodes` may be model instances or rows of
    `values_list(named=True)` with the same attribute names (run lists render from rows, since
    building model instances dominated a page's cost; docs/performance.md)."""
    order = [n["node_id"] for n in flow_nodes]
    by_id = {n.node_id: n for n in nodes}
    ordered = [by_id[n] for n in order if n in by_id]
    if run.status != RunStatus.AWAITING_APPROVAL:
        open_gate = None
    blocked = {n.node_id for n in ordered if n.state == NodeState.BLOCKED}
    if open_gate is not None:
        blocked |= descendants(flow_nodes, [open_gate.node_id]) - {open_gate.node_id}
    blocked_ids = [n for n in order if n in blocked]
    return {
        "run_id": run.run_id,
        "automation_id": automation_id,
        "workspace": workspace,
        "status": run.status,
        "trigger_type": run.trigger_type,
        "inputs": run.inputs,
        "requested_by": requested_by,
        "created_at_ms": to_ms(run.created_at),
        "updated_at_ms": to_ms(run.updated_at),
        "started_at_ms": to_ms(run.started_at),
        "finished_at_ms": to_ms(run.finished_at),
        "pause_reason": run.pause_reason or None,
        "resume_reason": run.resume_reason or None,
        "detail": run.detail or None,
        "stop_kind": run.stop_kind or None,
        "stop_reason": run.stop_reason or None,
        "version": run.version,
        "automation_version": automation_version,
        "checkpoint": {
            "completed_nodes": [n.node_id for n in ordered if n.state in DONE_STATES],
            "pending_nodes": [n.node_id for n in ordered if n.state in PENDING_STATES],
            "running_nodes": [n.node_id for n in ordered if n.state == NodeState.RUNNING],
            "failed_nodes": [n.node_id for n in ordered if n.state == NodeState.FAILED],
            "blocked_nodes": blocked_ids,
            "node_outputs": {n.node_id: n.output for n in ordered if n.output is not None},
            "node_attempts": {n.node_id: n.attempts for n in ordered if n.attempts},
            "node_feedback": {n.node_id: n.feedback for n in ordered if n.feedback},
            "awaiting_gate": gate_json(open_gate) if open_gate is not None else None,
            "gate_history": gate_history,
            "lifecycle_history": lifecycle_history,
            "last_failure": run.last_failure,
        },
        "blockedNodeIDs": blocked_ids,
    }
