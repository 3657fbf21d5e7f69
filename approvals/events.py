"""The gates' domain events (`governance.events`): one shape for every gate event, recorded by
the code that opens and closes gates, inside its transaction (docs/api.md, "Events").

- `gate.opened`: `approvals.services.gate_open` (the engine parked a run on a new round);
- `gate.decided`: `approvals.decisions` (a settling decision on any surface);
- `gate.expired`: `approvals.expiry` (the sweep settled it as expired; the run is cancelled);
- `gate.superseded`: `approvals.services.gates_supersede` (the run stopped waiting on it:
  operator cancel, pause, recover, repair, task reset, automation delete), set-based;
- `gate.approval_recorded`: `approvals.decisions` (an approval of a quorum gate that does not
  settle it yet: the two-person rule's progress).

Events follow cause and effect within a transaction: a decided or expired gate that cancels
its run is followed by `run.cancelled`; a run moved by an operator (or an automation delete) is
followed by the `gate.superseded` of the gate it stopped waiting on.
"""

from __future__ import annotations

from typing import Any

from approvals.models import Gate
from automations.api.run_json import approval_url
from governance.events import EventDraft, events_record

OPENED = "gate.opened"
DECIDED = "gate.decided"
EXPIRED = "gate.expired"
SUPERSEDED = "gate.superseded"
APPROVAL_RECORDED = "gate.approval_recorded"
GATE_EVENT_TYPES = {
    OPENED: "a gate opened a new round and its run waits for a decision",
    DECIDED: "a settling decision (approve, rework, cancel) was made on any surface",
    EXPIRED: "the gate expired before a decision; its run is cancelled",
    SUPERSEDED: "the run stopped waiting on the gate (cancelled, paused, recovered, repaired)",
}


def gate_event_data(
    *, gate_id: str, run_id: str, automation_id: str, node_id: str, round: int, **extra: Any
) -> dict[str, Any]:
    """Which gate opening, of which run, with the approval page a person decides it on."""
    return {
        "gate_id": gate_id,
        "run_id": run_id,
        "automation_id": automation_id,
        "node_id": node_id,
        "round": round,
        "approval_url": approval_url(gate_id),
        **extra,
    }


def gate_event(event_type: str, gate: Gate, *, run, **extra: Any) -> None:
    """Record one event of `gate` (its `run` loaded with its automation)."""
    data = gate_event_data(
        gate_id=gate.pk,
        run_id=run.run_id,
        automation_id=run.automation.automation_id,
        node_id=gate.node_id,
        round=gate.round,
        **extra,
    )
    events_record([EventDraft(gate.workspace_id, event_type, data)])


def gates_superseded(rows: list[tuple[str, int, str, int, str, str]]) -> None:
    """`gate.superseded` for many gates at once: rows of (gate id, workspace id, node id,
    round, run id, automation id), one INSERT."""
    events_record(
        EventDraft(
            workspace_id,
            SUPERSEDED,
            gate_event_data(
                gate_id=gate_id,
                run_id=run_id,
                automation_id=automation_id,
                node_id=node_id,
                round=round_,
            ),
        )
        for gate_id, workspace_id, node_id, round_, run_id, automation_id in rows
    )
