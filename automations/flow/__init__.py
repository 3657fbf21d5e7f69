"""Automation specs: validation, normalisation and the graph helpers the run engine reuses.

Pure functions over the JSON-shaped spec (no database), so the API, the admin, the seed command and
the engine judge a flow the same way, and a run's snapshot can be re-read without a query.

Validation collects every problem before raising one `InvalidFlow` (400,
`AUTOMATION_V2_INVALID_FLOW`) whose body names the offending nodes and fields, so a client can fix
a flow in one round trip. Each error is `{"node_id": str | None, "field": str, "message": str}`;
`field` is relative to the node for node problems (`gate.decisions`) and to the spec otherwise
(`execution.max_parallel`, `agents[0].agent_id`, `handoff_config.inbox_dir`).

Decisions made here (the spec leaves them open) are written down next to the code they shape:
node kinds in `nodes`, gate decisions in `gates` and `original_gates`, handoff dirs in `handoffs`.
The new-style objects (`gate`, `gate.expiry`, `gate.policy`, `retry`, `http`, `handoff_config`)
refuse unknown keys, so a typo such as `expires_after` cannot silently fall back to a default;
`metadata`, `execution` and agents stay free-form apart from the checked keys.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from automations.flow.agents import normalise_agents
from automations.flow.execution import MAX_PARALLEL, normalise_execution
from automations.flow.gate_expiry import ON_EXPIRY
from automations.flow.gate_policy import REVIEWER_ELIGIBILITY
from automations.flow.gates import DECISIONS, gate_config, is_approval_node
from automations.flow.graph import check_cycles, descendants
from automations.flow.handoffs import (
    HANDOFF_DEFAULTS,
    HANDOFF_DIR_KEYS,
    handoff_dirs,
    normalise_handoff,
)
from automations.flow.nodes import (
    MAX_ATTEMPTS,
    MAX_BACKOFF_S,
    MAX_HTTP_TIMEOUT_S,
    NODE_KINDS,
    check_node_ids,
    flow_nodes,
    normalise_node,
)
from automations.flow.original_gates import ORIGINAL_APPROVAL_SOURCE
from automations.flow.problems import Problems, Report
from automations.flow.values import JSON, MAX_ID_LENGTH

__all__ = [
    "DECISIONS",
    "HANDOFF_DEFAULTS",
    "HANDOFF_DIR_KEYS",
    "JSON",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_S",
    "MAX_HTTP_TIMEOUT_S",
    "MAX_ID_LENGTH",
    "MAX_PARALLEL",
    "NODE_KINDS",
    "ON_EXPIRY",
    "ORIGINAL_APPROVAL_SOURCE",
    "REVIEWER_ELIGIBILITY",
    "Report",
    "descendants",
    "gate_config",
    "handoff_dirs",
    "is_approval_node",
    "validate_automation",
]


def validate_automation(
    *,
    flow: Any,
    agents: Any,
    execution: Any,
    workspace_root: Any,
    handoff_config: Any,
) -> JSON:
    """Check a whole automation spec and return it normalised, or raise `InvalidFlow`.

    Called on create and on every update with the full merged spec, because a change to one part
    (an agent removed, a node renamed) can invalidate another. The inputs are not mutated.
    Returns `{"flow": {"nodes": [...]}, "agents": [...], "execution": {...},
    "handoff_config": {...} | None}`.
    """
    flow, agents, execution, handoff_config = copy.deepcopy(
        (flow, agents, execution, handoff_config)
    )
    problems = Problems()
    agent_list, agent_ids = normalise_agents(agents, problems)
    raw_nodes = flow_nodes(flow, problems)
    node_ids = check_node_ids(raw_nodes, problems)
    nodes = [normalise_node(node, node_ids, agent_ids, problems) for _, node in raw_nodes]
    check_cycles(nodes, problems)
    result = {
        "flow": {**flow, "nodes": nodes} if isinstance(flow, Mapping) else {"nodes": nodes},
        "agents": agent_list,
        "execution": normalise_execution(execution, problems),
        "handoff_config": normalise_handoff(workspace_root, handoff_config, problems),
    }
    problems.raise_if_any()
    return result
