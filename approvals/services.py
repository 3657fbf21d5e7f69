"""Writes to gates that the run engine and the run state machine ask for, through the gate kind
`approval` this app registers (`approvals.apps`, `automations.nodes.registry.GateKind`):
opening a gate when the engine parks a run on it, superseding the open gates of runs that
stopped waiting on them. Deciding is `approvals.decisions`; expiry and reminders
`approvals.expiry`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max

from approvals import signals
from approvals.models import Gate, GateStatus
from approvals.reviewers import gate_lacks_independent_reviewer
from automations.models import Run


def reviewed_digest(reviewed: dict[str, Any]) -> str:
    """SHA-256 of what the reviewer judges (the upstream outputs, the downstream plan and the
    run's inputs), in canonical JSON. A decision records it, so "approved what was seen, and
    what runs after it" can be checked."""
    canonical = json.dumps(reviewed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def gate_open(
    *,
    run: Run,
    node_id: str,
    gate: dict[str, Any],
    upstream_outputs: dict[str, Any],
    downstream_plan: list[dict[str, Any]],
    now,
) -> dict[str, Any]:
    """Open the next round of `node_id`'s gate; return the metadata of the run's
    `approval_gate_opened` event. The engine calls it (inside its transaction, the run row
    locked) and then parks the run; `gate_opened` is sent after that commit."""
    previous = Gate.objects.filter(run=run, node_id=node_id).aggregate(Max("round"))["round__max"]
    reviewed = {"upstream_outputs": upstream_outputs, "downstream_plan": downstream_plan}
    if run.inputs:  # the reviewer sees them too (an approval request's action and arguments)
        reviewed["inputs"] = run.inputs
    expiry = gate.get("expiry") or {}
    expires_after = expiry.get("expires_after_s") or settings.FLOWGATE_GATE_DEFAULT_EXPIRY_S
    opened = Gate.objects.create(
        id=f"gate-{uuid.uuid4().hex}",
        run=run,
        workspace_id=run.workspace_id,
        node_id=node_id,
        round=(previous or 0) + 1,
        title=gate["title"],
        instructions=gate.get("instructions") or "",
        decisions=gate["decisions"],
        rework_targets=gate["rework_targets"],
        upstream_node_ids=sorted(upstream_outputs),
        policy=gate["policy"],
        expiry_policy={
            **expiry,
            "expires_after_s": expires_after,
            "on_expiry": expiry.get("on_expiry") or "cancel",
        },
        requested_by_id=run.requested_by_id,
        requested_at=now,
        expires_at=now + timedelta(seconds=expires_after),
        reviewed=reviewed,
        reviewed_digest=reviewed_digest(reviewed),
        lacks_independent_reviewer=gate_lacks_independent_reviewer(run=run, policy=gate["policy"]),
    )
    signals.send_after_commit(signals.gate_opened, gate_id=opened.id)
    return {
        "gate_id": opened.id,
        "round": opened.round,
        "expires_at": opened.expires_at.isoformat(),
        "lacks_independent_reviewer": opened.lacks_independent_reviewer,
    }


def gates_supersede(*, run_pks: list[int], now: datetime) -> dict[int, list[str]]:
    """Close the open gates of runs (locked by the caller) that stopped waiting on them.

    The gate rows are locked after the runs (the fixed order: run, gate, audit head), so a
    concurrent decision either committed before (and the run was no longer awaiting) or finds
    the gate superseded. Each closing is announced after commit (the chat cards lose their
    buttons and say the run moved on).
    """
    gates = list(
        Gate.objects.select_for_update()
        .filter(run_id__in=run_pks, status=GateStatus.OPEN)
        .order_by("pk")
        .values_list("id", "run_id")
    )
    if not gates:
        return {}
    Gate.objects.filter(pk__in=[gate_id for gate_id, _ in gates]).update(
        status=GateStatus.SUPERSEDED, closed_at=now
    )
    by_run: dict[int, list[str]] = defaultdict(list)
    for gate_id, run_pk in gates:
        by_run[run_pk].append(gate_id)
        signals.send_after_commit(
            signals.gate_closed, gate_id=gate_id, outcome=signals.SUPERSEDED, decision=None
        )
    return dict(by_run)


class ApprovalGateKind:
    """The `approval` node kind's gate (`automations.nodes.registry.GateKind`)."""

    def open(self, **kwargs: Any) -> dict[str, Any]:
        return gate_open(**kwargs)

    def supersede(self, *, run_pks: list[int], now: datetime) -> dict[int, list[str]]:
        return gates_supersede(run_pks=run_pks, now=now)
