"""Read access to the automation snapshot a run executes (no database, no validation).

The snapshot was validated when the automation was saved; the engine only needs lookups.
`NodeSpec` reads one node's entry: the engine keeps that entry on the node's row
(`RunNode.spec`, `automations.run_nodes`), so executing or finishing a node reads its own spec
without the run's whole snapshot. `RunSpec` reads the whole snapshot, for what needs the whole
flow (a gate's downstream plan, operator resets, the node rows' planning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automations.flow import descendants, gate_config, is_approval_node


@dataclass(frozen=True)
class NodeSpec:
    """One node's entry of the flow (its `depends_on`, kind, retry, timeout, gate, handoff)."""

    node: dict[str, Any]

    @property
    def depends_on(self) -> list[str]:
        return list(self.node.get("depends_on") or [])

    @property
    def is_approval(self) -> bool:
        return is_approval_node(self.node)

    @property
    def kind(self) -> str:
        return "approval" if self.is_approval else self.node.get("kind", "agent")

    @property
    def max_attempts(self) -> int:
        return int((self.node.get("retry") or {}).get("max_attempts") or 1)

    @property
    def backoff_s(self) -> float:
        return float((self.node.get("retry") or {}).get("backoff_s") or 0)

    @property
    def timeout_s(self) -> float | None:
        value = self.node.get("timeout_s")
        return float(value) if value else None

    @property
    def gate(self) -> dict[str, Any]:
        return gate_config(self.node)

    @property
    def handoff(self) -> dict[str, Any] | None:
        """The node's handoff declaration (`node.handoff` or `metadata.handoff`): an object
        (`artifact_type`, `target_automation_id`, `metadata`) or `true` for the defaults."""
        declared = self.node.get("handoff") or (self.node.get("metadata") or {}).get("handoff")
        if declared is True:
            return {}
        return declared if isinstance(declared, dict) else None


@dataclass(frozen=True)
class RunSpec:
    order: tuple[str, ...]
    nodes: dict[str, dict[str, Any]]
    agents: dict[str, dict[str, Any]]
    max_parallel: int
    workspace_root: str

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> RunSpec:
        nodes = (snapshot.get("flow") or {}).get("nodes") or []
        return cls(
            order=tuple(n["node_id"] for n in nodes),
            nodes={n["node_id"]: n for n in nodes},
            agents={a["agent_id"]: a for a in snapshot.get("agents") or []},
            max_parallel=int((snapshot.get("execution") or {}).get("max_parallel") or 1),
            workspace_root=snapshot.get("workspace_root") or "",
        )

    def node(self, node_id: str) -> NodeSpec:
        return NodeSpec(self.nodes[node_id])

    def depends_on(self, node_id: str) -> list[str]:
        return self.node(node_id).depends_on

    def is_approval(self, node_id: str) -> bool:
        return self.node(node_id).is_approval

    def kind(self, node_id: str) -> str:
        return self.node(node_id).kind

    def agent_of(self, node_id: str) -> dict[str, Any] | None:
        agent_id = self.nodes[node_id].get("agent_id")
        return self.agents.get(agent_id) if agent_id else None

    def downstream_plan(self, node_id: str) -> list[dict[str, Any]]:
        """What runs after `node_id` (a gate): every node that depends on it, directly or not,
        in flow order, with its whole spec and its agent's profile (prompt, template, model;
        an http node's URL; any kind's settings). An approval covers exactly this plan: the
        reviewed digest binds it and a change to it reopens the gate
        (`automations.runs.control`)."""
        below = descendants(self.nodes.values(), [node_id]) - {node_id}
        return [
            {
                "node_id": n,
                "kind": self.kind(n),
                "depends_on": self.depends_on(n),
                "spec": self.nodes[n],
                "agent": self.agent_of(n),
            }
            for n in self.order
            if n in below
        ]
