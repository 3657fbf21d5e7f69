"""What the gate page shows besides the form: the run's graph, the outputs under review, the
policy, the expiry and the outcome. Read-only, a fixed number of queries per page.

Outputs are agent and HTTP results, i.e. text anyone upstream could have written: they are
handed to the template as plain strings and rendered with autoescaping only (never `|safe`),
so markup in them, `<script>` included, shows as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString

from approvals.decisions import gate_expired
from approvals.models import Gate, GateDecision, GateStatus
from approvals.policy import GatePolicy, requester_id
from automations.flow_diagram import flow_graph_svg
from automations.models import RunNode, RunStatus
from governance.actors import Actor

MAX_RAW_OUTPUT_CHARS = 20_000  # a huge output is cut on the page; the API has all of it
OUTCOME_LABELS = {
    "approve": "Approved",
    "rework": "Sent back for rework",
    "cancel": "Cancelled",
    "expired": "Expired",
}


@dataclass(frozen=True)
class UpstreamOutput:
    """One upstream node's output as the reviewer sees it."""

    node_id: str
    state: str
    summary: str
    text: str
    raw: str
    truncated: bool


def gate_view(gate: Gate, actor: Actor) -> dict[str, Any]:
    """The template context of the gate page, except the form and eligibility."""
    run = gate.run
    rows = RunNode.objects.filter(run=run).only("node_id", "state", "output")
    nodes = {node.node_id: node for node in rows}
    now = timezone.now()
    is_open = gate.status == GateStatus.OPEN and run.status == RunStatus.AWAITING_APPROVAL
    record = (
        GateDecision.objects.filter(gate=gate, settles=True).select_related("decided_by").first()
    )
    newer = (
        None
        if gate.status == GateStatus.OPEN
        else Gate.objects.filter(run=run, status=GateStatus.OPEN).exclude(pk=gate.pk).first()
    )
    return {
        "gate": gate,
        "run": run,
        "automation": run.automation,
        "workspace": run.workspace,
        "graph": _graph(gate, run, nodes, is_open),
        "outputs": [_output(node_id, nodes.get(node_id)) for node_id in gate.upstream_node_ids],
        "policy": GatePolicy.of(gate.policy),
        "on_expiry": (gate.expiry_policy or {}).get("on_expiry") or "cancel",
        "expired": gate_expired(gate, now),
        "is_open": is_open,
        "is_requester": actor.user is not None and actor.user.pk == requester_id(run),
        "record": record,
        "outcome": OUTCOME_LABELS.get(record.decision, record.decision) if record else None,
        "newer_gate": newer,
    }


def _graph(gate: Gate, run, nodes: dict[str, RunNode], is_open: bool) -> SafeString:
    states = {node_id: node.state for node_id, node in nodes.items()}
    if is_open:
        states[gate.node_id] = "awaiting_approval"
    return flow_graph_svg(run.automation_snapshot or {}, states, highlight=gate.node_id)


def _output(node_id: str, node: RunNode | None) -> UpstreamOutput:
    output = node.output if node is not None else None
    if not isinstance(output, dict):
        output = {} if output is None else {"value": output}
    content = output.get("content")
    text = content.get("text") if isinstance(content, dict) else None
    raw = json.dumps(output, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return UpstreamOutput(
        node_id=node_id,
        state=node.state if node is not None else "",
        summary=output.get("summary") if isinstance(output.get("summary"), str) else "",
        text=text if isinstance(text, str) else "",
        raw=raw[:MAX_RAW_OUTPUT_CHARS] if output else "",
        truncated=len(raw) > MAX_RAW_OUTPUT_CHARS,
    )
