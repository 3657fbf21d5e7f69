"""How the original authored approval nodes: its markers, labels and where it kept gate config.

Original-style gates (`metadata.approval`) keep the original's behaviour: labels are mapped
(reject/deny → cancel, changes/request_changes/ask_changes → rework), the default is
approve + cancel, and `rework` is appended when rework targets are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.values import clean, mapping

ORIGINAL_APPROVAL_SOURCE = "metadata.approval"
# The original's default labels were ["Approve", "Reject"]; reject maps to cancel.
ORIGINAL_DEFAULT_DECISIONS = ("approve", "cancel")
ORIGINAL_DECISION_ALIASES = {
    "reject": "cancel",
    "deny": "cancel",
    "changes": "rework",
    "request_changes": "rework",
    "ask_changes": "rework",
}
# Where the original kept an expiry policy (in milliseconds) inside `metadata.approval`.
ORIGINAL_EXPIRY_PATHS = (
    ("expiry_policy",),
    ("gate_expiry_policy",),
    ("policy", "expiry"),
    ("policy", "gate_expiry"),
)


def original_approval(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The node's `metadata.approval` object; empty when absent or not an object."""
    return mapping(mapping(node.get("metadata")).get("approval"))


def has_original_approval_marker(node: Mapping[str, Any]) -> bool:
    metadata = mapping(node.get("metadata"))
    approval = original_approval(node)
    return (
        clean(node.get("stage_kind")) == "approval"
        or clean(metadata.get("stage_kind")) == "approval"
        or clean(mapping(metadata.get("builder")).get("task_class")) == "human_decision_gate"
        or "allowed_decisions" in approval
        or "decisions" in approval
        or approval.get("require_explicit_decision") is True
    )
