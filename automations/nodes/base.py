"""What a node kind receives and how it reports failure.

A node kind is a callable `execute(ctx: NodeContext) -> dict` registered under a kind name
(`automations.nodes.registry`). It runs in a Celery worker *outside* any database transaction
and must not touch the database: the engine accepts or discards its output afterwards (fencing).
It returns the node's output JSON, or raises `NodeFailure` for an expected failure (the engine
records the reason and retries if attempts remain). Any other exception is treated the same way
with `failure_kind="execution_failed"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class NodeContext:
    run_id: str
    automation_id: str
    workspace: str  # "<org>/<ws>"
    node: dict[str, Any]  # the normalised flow node from the run's snapshot
    agent: dict[str, Any] | None  # the node's agent profile (agent nodes), from the snapshot
    upstream_outputs: dict[str, Any] = field(default_factory=dict)  # node_id -> output
    attempt: int = 1
    workspace_root: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)  # the run's inputs (`run_now`)
    # Reviewer feedback from reworks that sent this node back (`RunNode.feedback`).
    feedback: list[dict[str, Any]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return self.node["node_id"]


class NodeFailure(Exception):
    """An expected node failure: `reason` is shown to operators, `failure_kind` classifies it.

    `retryable=False` marks a configuration error no retry can fix (a host the allowlist
    refuses, an invalid node): the engine fails the node on this attempt instead of retrying
    with backoff while the run looks healthy.
    """

    def __init__(
        self,
        reason: str,
        *,
        failure_kind: str = "execution_failed",
        retryable: bool = True,
        **details: Any,
    ):
        super().__init__(reason)
        self.reason = reason
        self.failure_kind = failure_kind
        self.retryable = retryable
        self.details = details


class NodeKind(Protocol):
    def __call__(self, ctx: NodeContext) -> dict[str, Any]: ...
