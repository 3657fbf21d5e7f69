"""Typed views of the API's JSON: approval requests, their decisions, and runs.

Each keeps the whole JSON it came from in `raw`, so a field the server adds later is still
reachable before the client learns its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RequestStatus = Literal["pending", "approved", "rework", "cancelled", "expired"]
DecisionKind = Literal["approve", "rework", "cancel"]

#: Statuses after which a request never changes again.
SETTLED: frozenset[str] = frozenset({"approved", "rework", "cancelled", "expired"})
#: Statuses after which a run never changes again (unless an operator recovers it).
RUN_TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class Decision:
    """How a human settled an approval request."""

    decision: DecisionKind
    reason: str
    decided_by: dict[str, Any]
    decided_at: str | None
    surface: str | None
    edited: bool
    diff: list[Any]
    #: The standing approval that approved the request in advance (surface `standing`).
    standing_approval: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        return cls(
            decision=data["decision"],
            reason=data.get("reason") or "",
            decided_by=data.get("decided_by") or {},
            decided_at=data.get("decided_at"),
            surface=data.get("surface"),
            edited=bool(data.get("edited")),
            diff=list(data.get("diff") or []),
            standing_approval=data.get("standing_approval"),
        )


@dataclass(frozen=True)
class ApprovalRequest:
    """An agent's question to a human, and (once settled) the answer.

    Act on `approved_arguments`, never on `arguments`: a reviewer may have approved with edits.
    """

    request_id: str
    status: RequestStatus
    action: str
    arguments: dict[str, Any]
    summary: str
    url: str | None
    decision: Decision | None
    approved_arguments: dict[str, Any] | None
    response: dict[str, Any] | None
    expires_at: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovalRequest:
        decision = data.get("decision")
        return cls(
            request_id=data["request_id"],
            status=data["status"],
            action=data["action"],
            arguments=data.get("arguments") or {},
            summary=data.get("summary") or "",
            url=data.get("url"),
            decision=Decision.from_json(decision) if decision else None,
            approved_arguments=data.get("approved_arguments"),
            response=data.get("response"),
            expires_at=data.get("expires_at"),
            raw=data,
        )

    @property
    def settled(self) -> bool:
        return self.status in SETTLED

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclass(frozen=True)
class Run:
    """A run of an automation (`GET /api/automations/v2/runs/{run_id}`)."""

    run_id: str
    automation_id: str
    status: str
    inputs: dict[str, Any]
    checkpoint: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        return cls(
            run_id=data["run_id"],
            automation_id=data["automation_id"],
            status=data["status"],
            inputs=data.get("inputs") or {},
            checkpoint=data.get("checkpoint") or {},
            raw=data,
        )

    @property
    def awaiting_gate(self) -> dict[str, Any] | None:
        """The open approval gate (ids, title, policy, `approval_url`), or None."""
        return self.checkpoint.get("awaiting_gate")

    @property
    def node_outputs(self) -> dict[str, Any]:
        return self.checkpoint.get("node_outputs") or {}

    @property
    def finished(self) -> bool:
        return self.status in RUN_TERMINAL
