"""An approval request as the API shows it (docs/agents.md), from the row and its gate and
settling decision (`approvals.selectors.requests_visible` joins them: no query per row).

The status is the gate's, read here and stored nowhere else: open → `pending` (or `expired`
once `expires_at` has passed, before the sweep closes it: fail closed), decided → the decision
(`approved`, `rework`, `cancelled`), expired → `expired`, superseded (an operator stopped the
run) → `cancelled`. Only an approval has `approved_arguments`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from approvals.decisions import gate_expired
from approvals.models import ApprovalRequest, GateStatus
from automations.api.run_json import approval_url

PENDING = "pending"
STATUSES = ("pending", "approved", "rework", "cancelled", "expired")
DECIDED_STATUS = {"approve": "approved", "rework": "rework", "cancel": "cancelled"}


def request_status(request: ApprovalRequest, now: datetime | None = None) -> str:
    gate = request.gate
    if gate.status == GateStatus.OPEN:
        return "expired" if gate_expired(gate, now or timezone.now()) else PENDING
    if gate.status == GateStatus.DECIDED and request.decision is not None:
        return DECIDED_STATUS[request.decision.decision]
    if gate.status == GateStatus.EXPIRED:
        return "expired"
    return "cancelled"


def _principal(user) -> dict[str, Any] | None:
    return None if user is None else {"username": user.username, "kind": user.kind}


def request_json(request: ApprovalRequest, now: datetime | None = None) -> dict[str, Any]:
    status = request_status(request, now)
    record = request.decision
    decision = None
    if record is not None:
        metadata = record.metadata.get("request") or {}
        decision = {
            "decision": record.decision,
            "reason": record.reason or None,
            "decided_by": _principal(record.decided_by),
            "decided_at": record.decided_at.isoformat(),
            "surface": record.source,
            "edited": bool(request.diff),
            "diff": request.diff,
            "digest": metadata.get("decision_digest"),
            "standing_approval": request.standing_approval_id,
        }
    gate = request.gate
    return {
        "request_id": request.pk,
        "status": status,
        "action": request.action,
        "arguments": request.arguments,
        "summary": request.summary,
        "context": request.context,
        "policy": request.policy,
        "effective_policy": gate.policy,
        "expiry": gate.expiry_policy,
        "response_schema": request.response_schema,
        "editable": request.editable,
        "requested_by": _principal(request.requested_by),
        "created_at": request.created_at.isoformat(),
        "expires_at": gate.expires_at.isoformat(),
        "decision": decision,
        "approved_arguments": request.approved_arguments if status == "approved" else None,
        "response": request.response if status == "approved" else None,
        "run_id": request.run.run_id,
        "gate_id": gate.pk,
        "url": approval_url(gate.pk),
    }
