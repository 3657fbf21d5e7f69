"""The gate page's live status: a small JSON the page's own script (static/flowgate/gate-live.js)
polls, so another reviewer's decision, a new round (supersession) or an expiry shows on an open
page without a reload. Self-hosted and script-from-file only, so it works under the site's CSP.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from approvals.decisions import gate_expired
from approvals.models import Gate, GateDecision, GateStatus
from approvals.pages.gate_view import OUTCOME_LABELS
from automations.models import RunStatus


def live_status(gate: Gate) -> dict[str, Any]:
    """What decides whether the page is stale: `state` changes exactly when the page would
    render a different status; `message` says what happened in words."""
    expired = gate_expired(gate, timezone.now())
    is_open = (
        gate.status == GateStatus.OPEN
        and gate.run.status == RunStatus.AWAITING_APPROVAL
        and not expired
    )
    if is_open:
        state = "open"
    elif expired:
        state = "expired"
    elif gate.status == GateStatus.OPEN:  # the run moved on (paused, cancelled by an operator)
        state = f"run-{gate.run.status}"
    else:
        state = gate.status
    return {"state": state, "gate_status": gate.status, "message": _message(gate, state)}


def _message(gate: Gate, state: str) -> str:
    if state == "open":
        return ""
    if state == "expired":
        return "This gate expired before a decision was made."
    if state.startswith("run-"):
        return f"The run is now {gate.run.get_status_display().lower()}: no decision for now."
    if state == GateStatus.SUPERSEDED:
        return "This gate was superseded: a newer round replaced it."
    record = (
        GateDecision.objects.filter(gate=gate, settles=True).select_related("decided_by").first()
    )
    if record is None:
        return "This gate is no longer open."
    who = record.decided_by.username if record.decided_by else "the system"
    return f"{OUTCOME_LABELS.get(record.decision, record.decision)} by {who}."
