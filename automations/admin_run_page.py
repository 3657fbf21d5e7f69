"""What the admin's run page shows beyond the run's own fields: where the run is and how long
it has taken, the actions its state allows, the flow graph with each node's state, the node
table with outputs and per-node actions, the lifecycle timeline (with the node of each event)
and the gate history.

Four queries whatever the run's size (nodes, lifecycle events, gates, their decisions); the
timeline shows the latest `TIMELINE_LIMIT` events (a run retried for days can have thousands),
and the full history stays one click away in the lifecycle events list.

The actions offered come from the run state machine's table
(`transitions.operator_actions_allowed`), never from a list of statuses kept here: a button
shown is one the service would accept (the service still checks, under the lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from automations.admin_actions import NODE_ACTIONS, REPAIR, RUN_PAGE_ACTIONS, RunAction
from automations.admin_format import duration
from automations.flow import is_approval_node
from automations.flow_diagram import flow_graph_svg
from automations.models import LifecycleEvent, Run, RunNode, RunStatus
from automations.runs.control import blocked_node_ids
from automations.runs.transitions import Cause, operator_actions_allowed
from automations.selectors import run_gate_history

TIMELINE_LIMIT = 200


@dataclass(frozen=True)
class NodeRow:
    node: RunNode
    kind: str
    output_json: str | None
    actions: list[tuple[str, RunAction]]
    repairable: bool


@dataclass(frozen=True)
class TimelineRow:
    event: LifecycleEvent
    node_id: str


def _pretty(value: Any) -> str | None:
    """Outputs are shown as indented JSON text, escaped by the template like any other text."""
    if value is None:
        return None
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def offered_actions(run: Run, nodes: list[RunNode]) -> tuple[frozenset[Cause], set[str]]:
    """The operator actions the run's state allows, and its nodes with a blocked outcome.

    Recover of a completed run needs blocked evidence (`control.run_recover`), so it is offered
    only when a node shows one; continue likewise only on a blocked node.
    """
    allowed = set(operator_actions_allowed(run.status))
    blocked = blocked_node_ids(nodes)
    if run.status == RunStatus.COMPLETED and not blocked:
        allowed.discard(Cause.RECOVER)
    return frozenset(allowed), blocked


def run_page_context(run: Run) -> dict[str, Any]:
    flow_nodes = (run.automation_snapshot.get("flow") or {}).get("nodes") or []
    specs = {n["node_id"]: n for n in flow_nodes if isinstance(n, dict) and "node_id" in n}
    order = {node_id: index for index, node_id in enumerate(specs)}
    nodes = sorted(run.nodes.all(), key=lambda n: (order.get(n.node_id, len(order)), n.node_id))

    gates, open_gate = run_gate_history(run)
    states = {n.node_id: n.state for n in nodes}
    if open_gate is not None:
        states[open_gate.node_id] = "awaiting_approval"
    allowed, blocked = offered_actions(run, nodes)
    highlight = open_gate.node_id if open_gate is not None else None

    def node_actions(node: RunNode) -> list[tuple[str, RunAction]]:
        if node.node_id not in specs:
            return []
        return [
            (name, action)
            for name, action in NODE_ACTIONS.items()
            if action.cause in allowed
            and (action.cause != Cause.TASK_CONTINUE or node.node_id in blocked)
        ]

    latest = list(
        LifecycleEvent.objects.filter(run=run).order_by("-at", "-id")[: TIMELINE_LIMIT + 1]
    )
    running = [n.node_id for n in nodes if n.state == "running"]
    return {
        "run_actions": [
            (name, action) for name, action in RUN_PAGE_ACTIONS.items() if action.cause in allowed
        ],
        "current_step": f"gate {open_gate.node_id}"
        if open_gate is not None
        else ", ".join(running),
        "run_duration": duration(run.started_at, run.finished_at, now=timezone.now()),
        "flow_graph": flow_graph_svg(run.automation_snapshot, states, highlight=highlight),
        # Drawn top-down for narrow screens (admin-run.css shows one of the two).
        "flow_graph_tall": flow_graph_svg(
            run.automation_snapshot, states, highlight=highlight, vertical=True
        ),
        "node_rows": [
            NodeRow(
                node=n,
                kind=_kind(specs.get(n.node_id)),
                output_json=_pretty(n.output),
                actions=node_actions(n),
                repairable=REPAIR.cause in allowed and n.node_id in specs,
            )
            for n in nodes
        ],
        "timeline": [
            TimelineRow(event=e, node_id=_event_node(e)) for e in reversed(latest[:TIMELINE_LIMIT])
        ],
        "timeline_truncated": len(latest) > TIMELINE_LIMIT,
        "gates": gates,
        "open_gate": open_gate,
    }


def _event_node(event: LifecycleEvent) -> str:
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    node_id = metadata.get("node_id")
    return node_id if isinstance(node_id, str) else ""


def _kind(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "removed"
    return "approval" if is_approval_node(spec) else str(spec.get("kind") or "agent")
