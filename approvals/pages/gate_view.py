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
from urllib.parse import urlsplit, urlunsplit

from django.utils import timezone
from django.utils.safestring import SafeString

from approvals.decisions import gate_expired
from approvals.models import Gate, GateDecision, GateStatus
from approvals.policy import GatePolicy, requester_id
from automations.flow_diagram import flow_graph_svg
from automations.models import RunNode, RunStatus
from automations.nodes.agent import node_prompt
from governance.actors import Actor

MAX_RAW_OUTPUT_CHARS = 20_000  # a huge output is cut on the page; the API has all of it
OUTCOME_LABELS = {
    "approve": "Approved",
    "rework": "Sent back for rework",
    "cancel": "Cancelled",
    "expired": "Expired",
}


@dataclass(frozen=True)
class PlannedNode:
    """One node that runs after the gate is approved, as the reviewer sees it."""

    node_id: str
    kind: str
    depends_on: list[str]
    details: list[tuple[str, str]]  # (label, value): prompt, template, model, method, URL...


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
    is_open = _is_open(gate)
    record = (
        GateDecision.objects.filter(gate=gate, settles=True).select_related("decided_by").first()
    )
    newer = (
        None
        if gate.status == GateStatus.OPEN
        else Gate.objects.filter(run=run, status=GateStatus.OPEN).exclude(pk=gate.pk).first()
    )
    return {
        **reviewed_content(gate, nodes),
        "run": run,
        "automation": run.automation,
        "workspace": run.workspace,
        "graph": _graph(gate, run, nodes, is_open),
        "graph_tall": _graph(gate, run, nodes, is_open, vertical=True),
        "inputs": json.dumps(run.inputs, indent=2, sort_keys=True) if run.inputs else None,
        "policy": GatePolicy.of(gate.policy),
        "on_expiry": (gate.expiry_policy or {}).get("on_expiry") or "cancel",
        "expired": gate_expired(gate, now),
        "is_requester": actor.user is not None and actor.user.pk == requester_id(run),
        "record": record,
        "outcome": OUTCOME_LABELS.get(record.decision, record.decision) if record else None,
        "newer_gate": newer,
    }


def reviewed_content(gate: Gate, nodes: dict[str, RunNode] | None = None) -> dict[str, Any]:
    """What a reviewer judges, for `templates/approvals/under_review.html` (the approval page
    and the admin gate page show the same thing): the upstream outputs as this opening
    reviewed them, the downstream plan, and the gate's rounds. `nodes` are the run's nodes by
    id when the caller has read them already. Two queries at most."""
    run = gate.run
    if nodes is None:
        rows = RunNode.objects.filter(run=run).only("node_id", "state", "output")
        nodes = {node.node_id: node for node in rows}
    return {
        "gate": gate,
        "is_open": _is_open(gate),
        "outputs": _outputs(gate, nodes),
        "plan": [_planned(step) for step in (gate.reviewed or {}).get("downstream_plan") or []],
        "rounds": list(
            Gate.objects.filter(run=run, node_id=gate.node_id)
            .order_by("round")
            .only("id", "round", "status")
        ),
    }


def _is_open(gate: Gate) -> bool:
    """The opening is still waiting for a decision (its run parked on it)."""
    return gate.status == GateStatus.OPEN and gate.run.status == RunStatus.AWAITING_APPROVAL


def _graph(
    gate: Gate, run, nodes: dict[str, RunNode], is_open: bool, *, vertical: bool = False
) -> SafeString:
    """The run's graph; the page shows the `vertical` drawing on narrow screens."""
    states = {node_id: node.state for node_id, node in nodes.items()}
    if is_open:
        states[gate.node_id] = "awaiting_approval"
    return flow_graph_svg(
        run.automation_snapshot or {}, states, highlight=gate.node_id, vertical=vertical
    )


def _outputs(gate: Gate, nodes: dict[str, RunNode]) -> list[UpstreamOutput]:
    """The outputs as they were when this opening was reviewed (its snapshot; a later rework
    clears the nodes), or the nodes' current outputs for gates opened before snapshots."""
    reviewed = (gate.reviewed or {}).get("upstream_outputs")
    if isinstance(reviewed, dict):
        return [
            _output(node_id, nodes.get(node_id), reviewed.get(node_id))
            for node_id in gate.upstream_node_ids
        ]
    return [_output(node_id, nodes.get(node_id)) for node_id in gate.upstream_node_ids]


def _planned(step: dict[str, Any]) -> PlannedNode:
    """Label what a downstream node will do, by kind; the full spec is in the digest."""
    spec = step.get("spec") or {}
    agent = step.get("agent") or {}
    policy = agent.get("model_policy") if isinstance(agent.get("model_policy"), dict) else {}
    details = [
        ("Prompt", node_prompt(spec)),
        ("Agent", agent.get("agent_id")),
        ("Template", agent.get("template_id")),
        ("Model", " / ".join(str(v) for v in (policy.get("provider"), policy.get("model")) if v)),
    ]
    http = spec.get("http") if isinstance(spec.get("http"), dict) else {}
    if step.get("kind") == "http":
        details += [("Method", "POST"), ("URL", _without_credentials(http.get("url")))]
    if step.get("kind") == "approval":
        details.append(("Gate", spec.get("node_id")))
    return PlannedNode(
        node_id=str(step.get("node_id")),
        kind=str(step.get("kind")),
        depends_on=list(step.get("depends_on") or []),
        details=[(label, str(value)) for label, value in details if value],
    )


def _without_credentials(url: Any) -> str | None:
    """An http node's URL as shown: never a password or user name in it."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _output(node_id: str, node: RunNode | None, snapshot: Any = None) -> UpstreamOutput:
    output = snapshot if snapshot is not None else (node.output if node is not None else None)
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
