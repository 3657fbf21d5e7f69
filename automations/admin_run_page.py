"""What the admin's run page shows beyond the run's own fields: the flow graph with each node's
state, the node table with outputs, the lifecycle timeline and the gate history.

Four queries whatever the run's size (nodes, lifecycle events, gates, their decisions); the
timeline shows the latest `TIMELINE_LIMIT` events (a run retried for days can have thousands),
and the full history stays one click away in the lifecycle events list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from automations.flow import is_approval_node
from automations.flow_diagram import flow_graph_svg
from automations.models import LifecycleEvent, Run, RunNode
from automations.selectors import run_gate_history

TIMELINE_LIMIT = 200


@dataclass(frozen=True)
class NodeRow:
    node: RunNode
    kind: str
    output_json: str | None


def _pretty(value: Any) -> str | None:
    """Outputs are shown as indented JSON text, escaped by the template like any other text."""
    if value is None:
        return None
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def run_page_context(run: Run) -> dict[str, Any]:
    flow_nodes = (run.automation_snapshot.get("flow") or {}).get("nodes") or []
    specs = {n["node_id"]: n for n in flow_nodes if isinstance(n, dict) and "node_id" in n}
    order = {node_id: index for index, node_id in enumerate(specs)}
    nodes = sorted(run.nodes.all(), key=lambda n: (order.get(n.node_id, len(order)), n.node_id))

    gates, open_gate = run_gate_history(run)
    states = {n.node_id: n.state for n in nodes}
    if open_gate is not None:
        states[open_gate.node_id] = "awaiting_approval"

    latest = list(
        LifecycleEvent.objects.filter(run=run).order_by("-at", "-id")[: TIMELINE_LIMIT + 1]
    )
    return {
        "flow_graph": flow_graph_svg(
            run.automation_snapshot,
            states,
            highlight=open_gate.node_id if open_gate is not None else None,
        ),
        "node_rows": [
            NodeRow(
                node=n,
                kind=_kind(specs.get(n.node_id)),
                output_json=_pretty(n.output),
            )
            for n in nodes
        ],
        "timeline": list(reversed(latest[:TIMELINE_LIMIT])),
        "timeline_truncated": len(latest) > TIMELINE_LIMIT,
        "gates": gates,
        "open_gate": open_gate,
    }


def _kind(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "removed"
    return "approval" if is_approval_node(spec) else str(spec.get("kind") or "agent")
