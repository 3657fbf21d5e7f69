"""Read access to the automation snapshot a run executes (no database, no validation).

The snapshot was validated when the automation was saved; the engine only needs lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automations.flow import descendants, gate_config, is_approval_node


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

    def depends_on(self, node_id: str) -> list[str]:
        return list(self.nodes[node_id].get("depends_on") or [])

    def is_approval(self, node_id: str) -> bool:
        return is_approval_node(self.nodes[node_id])

    def kind(self, node_id: str) -> str:
        return "approval" if self.is_approval(node_id) else self.nodes[node_id].get("kind", "agent")

    def max_attempts(self, node_id: str) -> int:
        return int((self.nodes[node_id].get("retry") or {}).get("max_attempts") or 1)

    def backoff_s(self, node_id: str) -> float:
        return float((self.nodes[node_id].get("retry") or {}).get("backoff_s") or 0)

    def timeout_s(self, node_id: str) -> float | None:
        value = self.nodes[node_id].get("timeout_s")
        return float(value) if value else None

    def agent_of(self, node_id: str) -> dict[str, Any] | None:
        agent_id = self.nodes[node_id].get("agent_id")
        return self.agents.get(agent_id) if agent_id else None

    def gate(self, node_id: str) -> dict[str, Any]:
        return gate_config(self.nodes[node_id])

    def handoff(self, node_id: str) -> dict[str, Any] | None:
        """The node's handoff declaration (`node.handoff` or `metadata.handoff`): an object
        (`artifact_type`, `target_automation_id`, `metadata`) or `true` for the defaults."""
        node = self.nodes[node_id]
        declared = node.get("handoff") or (node.get("metadata") or {}).get("handoff")
        if declared is True:
            return {}
        return declared if isinstance(declared, dict) else None

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
