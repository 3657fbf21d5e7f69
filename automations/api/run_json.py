"""The run JSON of SPEC §4 (the original's field names), composed from prefetched rows.

Expects a run from `selectors.runs_with_state`, so rendering any number of runs costs no
further queries.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from automations.api.serializers import to_ms
from automations.flow import descendants
from automations.models import NodeState, Run, RunStatus

PENDING_STATES = frozenset({NodeState.PENDING, NodeState.RUNNING})


def approval_url(gate_id: str) -> str:
    return f"{settings.FLOWGATE_PUBLIC_URL.rstrip('/')}/approvals/{gate_id}/"


def gate_json(gate) -> dict[str, Any]:
    return {
        "node_id": gate.node_id,
        "approval_request_id": gate.id,
        "transition_id": gate.transition_id,
        "round": gate.round,
        "title": gate.title,
        "instructions": gate.instructions,
        "decisions": gate.decisions,
        "rework_targets": gate.rework_targets,
        "upstream_node_ids": gate.upstream_node_ids,
        "policy": gate.policy,
        "expiry_policy": gate.expiry_policy,
        "reviewed_digest": gate.reviewed_digest,
        "requested_at_ms": to_ms(gate.requested_at),
        "expires_at_ms": to_ms(gate.expires_at),
        "approval_url": approval_url(gate.id),
    }


def decision_json(decision) -> dict[str, Any]:
    return {
        "node_id": decision.node_id,
        "approval_request_id": decision.gate_id,
        "round": decision.gate.round,
        "decision": decision.decision,
        "reason": decision.reason or None,
        "decided_at_ms": to_ms(decision.decided_at),
        "decided_by": {
            "kind": decision.decider_kind,
            "actor_id": decision.decided_by.username if decision.decided_by else None,
            "source": decision.source,
        },
        "reviewed_digest": decision.reviewed_digest or None,
    }


def lifecycle_json(event) -> dict[str, Any]:
    return {
        "event": event.event,
        "recorded_at_ms": to_ms(event.at),
        "reason": event.reason or None,
        "stop_kind": event.stop_kind or None,
        "metadata": event.metadata,
    }


def run_json(run: Run) -> dict[str, Any]:
    order = [n["node_id"] for n in (run.automation_snapshot.get("flow") or {}).get("nodes", [])]
    nodes = {n.node_id: n for n in run.nodes.all()}
    ordered = [nodes[n] for n in order if n in nodes]
    open_gate = run.open[0] if run.open and run.status == RunStatus.AWAITING_APPROVAL else None
    blocked = {n.node_id for n in ordered if n.state == NodeState.BLOCKED}
    if open_gate is not None:
        flow_nodes = run.automation_snapshot["flow"]["nodes"]
        blocked |= descendants(flow_nodes, [open_gate.node_id]) - {open_gate.node_id}
    blocked_ids = [n for n in order if n in blocked]
    return {
        "run_id": run.run_id,
        "automation_id": run.automation.automation_id,
        "workspace": run.workspace.path,
        "status": run.status,
        "trigger_type": run.trigger_type,
        "requested_by": run.requested_by.username if run.requested_by else None,
        "created_at_ms": to_ms(run.created_at),
        "updated_at_ms": to_ms(run.updated_at),
        "started_at_ms": to_ms(run.started_at),
        "finished_at_ms": to_ms(run.finished_at),
        "pause_reason": run.pause_reason or None,
        "resume_reason": run.resume_reason or None,
        "detail": run.detail or None,
        "stop_kind": run.stop_kind or None,
        "stop_reason": run.stop_reason or None,
        "version": run.version,
        "automation_version": run.automation_snapshot.get("version"),
        "checkpoint": {
            "completed_nodes": [
                n.node_id for n in ordered if n.state in (NodeState.COMPLETED, NodeState.SKIPPED)
            ],
            "pending_nodes": [n.node_id for n in ordered if n.state in PENDING_STATES],
            "running_nodes": [n.node_id for n in ordered if n.state == NodeState.RUNNING],
            "failed_nodes": [n.node_id for n in ordered if n.state == NodeState.FAILED],
            "blocked_nodes": blocked_ids,
            "node_outputs": {n.node_id: n.output for n in ordered if n.output is not None},
            "node_attempts": {n.node_id: n.attempts for n in ordered if n.attempts},
            "awaiting_gate": gate_json(open_gate) if open_gate is not None else None,
            "gate_history": [decision_json(d) for d in run.gate_decisions.all()],
            "lifecycle_history": [lifecycle_json(e) for e in run.lifecycle_events.all()],
            "last_failure": run.last_failure,
        },
        "blockedNodeIDs": blocked_ids,
    }
