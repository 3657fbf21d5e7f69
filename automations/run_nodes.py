"""A run's node rows as the engine reads them, and which of them are ready, kept set-based.

Planning (`nodes_plan` when a run starts, `nodes_replan` when an operator re-snapshots it)
copies each node's entry of the snapshot onto its row (`position`, `kind`, `spec`, `agent`),
the run-wide settings onto the run (`run_settings`) and every `depends_on` entry into a
`RunEdge`, with one bulk insert each: O(nodes) once per run. After that a node step reads its
own row and its direct upstream rows only, whatever the size of the flow.

Readiness (`RunNode.deps_done`: every dependency completed or skipped) is derived state, so it
is recomputed from the rows rather than counted: `readiness_refresh` for the whole run on every
advance message (the claim, a retry's wake-up, a sweep's re-send: every way into `running` goes
through the claim, and every change an operator or a reviewer makes to node states happens
while the run is not running), and `readiness_release` for the dependents of one node that just
completed (the accepting transaction, once per node). Both are single
`UPDATE`s whose `NOT EXISTS` reads the edges of the nodes they touch, so a node step costs
O(its dependents), not O(the flow).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef

from automations.models import NodeState, Run, RunEdge, RunNode
from automations.run_spec import RunSpec

DONE = (NodeState.COMPLETED, NodeState.SKIPPED)
# The row fields planning writes (the rest is execution state).
PLANNED_FIELDS = ["position", "kind", "spec", "agent"]


def run_settings(spec: RunSpec) -> dict[str, Any]:
    """The run fields copied from the snapshot (`Run.max_parallel`, `Run.workspace_root`)."""
    return {"max_parallel": spec.max_parallel, "workspace_root": spec.workspace_root}


def _positions(spec: RunSpec) -> dict[str, int]:
    return {node_id: i for i, node_id in enumerate(spec.order)}


def nodes_plan(run: Run, spec: RunSpec) -> list[RunNode]:
    """Create the node rows and edges of a new run (bulk inserts); nodes without dependencies
    start ready."""
    rows = RunNode.objects.bulk_create(
        RunNode(
            run=run,
            node_id=node_id,
            position=i,
            kind=spec.kind(node_id),
            spec=spec.nodes[node_id],
            agent=spec.agent_of(node_id),
            deps_done=not spec.depends_on(node_id),
        )
        for i, node_id in enumerate(spec.order)
    )
    _edges_create(spec, {row.node_id: row for row in rows})
    return rows


def nodes_replan(run: Run, nodes: dict[str, RunNode], spec: RunSpec) -> tuple[list, list]:
    """Reconcile the locked rows `nodes` (changed in place) with a new snapshot `spec`: rows of
    removed nodes deleted, rows of added nodes created pending, every row's planned fields and
    the run's settings rewritten, the edges rebuilt. Returns (added, removed) node ids. The
    run's readiness is refreshed when it is claimed next."""
    for name, value in run_settings(spec).items():
        setattr(run, name, value)
    removed = sorted(node_id for node_id in nodes if node_id not in spec.nodes)
    if removed:
        RunNode.objects.filter(run=run, node_id__in=removed).delete()
        for node_id in removed:
            del nodes[node_id]
    positions = _positions(spec)
    added = [node_id for node_id in spec.order if node_id not in nodes]
    if added:
        created = RunNode.objects.bulk_create(RunNode(run=run, node_id=n) for n in added)
        nodes.update({row.node_id: row for row in created})
    for node_id, row in nodes.items():
        row.position = positions[node_id]
        row.kind = spec.kind(node_id)
        row.spec = spec.nodes[node_id]
        row.agent = spec.agent_of(node_id)
    RunNode.objects.bulk_update(list(nodes.values()), PLANNED_FIELDS)
    RunEdge.objects.filter(node__run=run).delete()
    _edges_create(spec, nodes)
    return added, removed


def _edges_create(spec: RunSpec, rows: dict[str, RunNode]) -> None:
    RunEdge.objects.bulk_create(
        RunEdge(node=rows[node_id], upstream=rows[dep])
        for node_id in spec.order
        for dep in spec.depends_on(node_id)
        if dep in rows
    )


def _undone_upstream():
    """`EXISTS` a dependency of the outer node that is not done yet."""
    return Exists(RunEdge.objects.filter(node=OuterRef("pk")).exclude(upstream__state__in=DONE))


def readiness_refresh(run: Run) -> None:
    """Recompute `deps_done` of every node of `run` (locked by the caller): two UPDATEs that
    write only the rows whose value changes."""
    rows = RunNode.objects.filter(run=run)
    rows.filter(deps_done=True).filter(_undone_upstream()).update(deps_done=False)
    rows.filter(deps_done=False).exclude(_undone_upstream()).update(deps_done=True)


# `readiness_release` runs on every node completion: plain SQL (portable to SQLite), so no ORM
# query is built and compiled for it each time.
RELEASE_SQL = """
UPDATE automations_runnode SET deps_done = TRUE
WHERE id IN (SELECT node_id FROM automations_runedge WHERE upstream_id = %s)
  AND NOT deps_done
  AND NOT EXISTS (
    SELECT 1 FROM automations_runedge edge
    JOIN automations_runnode upstream ON upstream.id = edge.upstream_id
    WHERE edge.node_id = automations_runnode.id AND upstream.state NOT IN (%s, %s)
  )
"""


def readiness_release(node: RunNode) -> int:
    """`node` just completed: mark ready its dependents whose other dependencies are done too.
    One UPDATE over the node's dependents only; returns how many became ready."""
    with connection.cursor() as cursor:
        cursor.execute(RELEASE_SQL, [node.pk, *DONE])
        return cursor.rowcount
