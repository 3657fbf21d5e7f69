"""Deciding a gate: the one service every surface calls (API, admin, approval pages, chat).

`gate_decide` checks, in SPEC §6.3's order:

1. the run is visible to the caller (404 `AUTOMATION_V2_RUN_NOT_FOUND`, by the caller's lookup;
   404 `AUTOMATION_V2_NOT_FOUND` when its automation was deleted);
2. the actor is human (403 `AUTOMATION_V2_GATE_REQUIRES_HUMAN`);
3. the review permission on the automation (403 `AUTOMATION_V2_ACCESS_DENIED`);
4. the run is `awaiting_approval` (409 `AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL` with
   `currentStatus` and the `winningDecision` of the most recent settled decision of the same
   gate node — SPEC §10.9), except that a decision aimed at an expired opening gets 409
   `AUTOMATION_V2_GATE_EXPIRED` even after the sweep cancelled the run (SPEC §14);
5. the decision is approve / rework / cancel, trimmed and case-insensitive (400
   `AUTOMATION_V2_GATE_INVALID_DECISION`) and offered by this gate (400
   `AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED`);
6. `approval_request_id` / `transition_id`, when given, name the open gate (409
   `AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED`; a `guard_denied` record that settles nothing,
   lifecycle `approval_gate_transition_guard_denied`, committed although the request fails);
7. the gate has not expired (409 `AUTOMATION_V2_GATE_EXPIRED`);
8. the self-approval rule and 9. reviewer authority (403, `approvals.policy`).

Every refusal after step 1 is audited `automation.governance.gate_decision_denied` with its code
in a transaction of its own (committed although the request fails).

Then one transaction applies the decision. Lock order (STYLE.md, as the engine and run control):
run row, its node rows, the gate row, and last (inside `audit_record`) the audit chain head. The
run and gate are re-checked under the locks; the GateDecision insert is the final arbiter: the
partial unique constraint `one_settling_decision_per_gate` lets exactly one settling decision
exist per opening, so a writer that somehow got past the run lock still loses with 409. The
decision, the node/run change, the gate's closing, the lifecycle events and the audit event
`automation.governance.gate_decided` commit together (SPEC §10.8); after commit the run's
execution is scheduled (approve, rework) and `approvals.hooks.gate_decided` runs (chat cards).

Decisions are keyed by gate *opening* (the Gate row): an opening superseded by a repair, reset
or cancel is closed, so a decision naming it is refused and never settles a later opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import hooks
from approvals.models import HUMAN_DECISIONS, Decision, Gate, GateDecision, GateStatus
from approvals.policy import MESSAGES, GatePolicy, authority_refusal, self_approval_refusal
from automations.flow import descendants
from automations.lifecycle import lifecycle_event
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus, StopKind
from automations.run_control import NODE_CONTROL_FIELDS, RUN_CONTROL_FIELDS
from automations.spec import RunSpec
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, FlowgateError, Forbidden, InvalidRequest
from governance.policy import Action, authorize

__all__ = ["Outcome", "gate_decide", "gate_expired", "not_awaiting"]

NOT_AWAITING = "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
GUARD_DENIED = "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
EXPIRED = "AUTOMATION_V2_GATE_EXPIRED"


@dataclass(frozen=True)
class Outcome:
    """An applied decision: the run and gate as written, and the decision record."""

    run: Run
    gate: Gate
    record: GateDecision

    @property
    def decision(self) -> str:
        return self.record.decision


def gate_decide(
    *,
    actor: Actor,
    run: Run,
    decision: Any,
    reason: str | None = None,
    approval_request_id: str | None = None,
    transition_id: str | None = None,
    source: str = "api",
) -> Outcome:
    """Decide the open gate of `run` as `actor` (see the module docstring for the checks).

    `run` is the caller's run in the caller's workspace (with its automation); everything is
    re-read under the locks. `source` is the surface (`decided_by.source`). Raises typed errors
    (`Forbidden`, `Conflict`, `InvalidRequest`, `NotFound`) mapped to the JSON error shape.
    """
    context = _Context(actor=actor, run=run, source=source)
    if not actor.is_human:
        context.deny(
            Forbidden(
                "Approval gate decisions require a verified human approver",
                code="AUTOMATION_V2_GATE_REQUIRES_HUMAN",
            )
        )
    try:
        held = authorize(actor, Action.REVIEW, run.automation, audit=False)
    except Forbidden as exc:
        context.deny(exc)
    request_id = (approval_request_id or "").strip() or None
    transition = (transition_id or "").strip() or None
    gate = Gate.objects.filter(run=run, status=GateStatus.OPEN).order_by("-round").first()
    fresh = Run.objects.only("status").get(pk=run.pk)
    if fresh.status != RunStatus.AWAITING_APPROVAL:
        context.deny(_not_awaiting_or_expired(run, fresh.status, request_id, transition))
    if gate is None:
        # Cannot happen through the services (a gate opens in the transaction that parks the
        # run, and closes in the one that moves it on); kept so a hand-edited run answers
        # clearly instead of failing.
        latest = Gate.objects.filter(run=run).order_by("-round").first()
        if latest is not None and gate_expired(latest, timezone.now()):
            context.gate = latest
            context.deny(_expired(context, latest))
        context.deny(
            Conflict(
                "Run has no pending gate", code="AUTOMATION_V2_RUN_GATE_MISSING", runID=run.run_id
            )
        )
    context.gate = gate
    chosen = (decision if isinstance(decision, str) else "").strip().lower()
    if chosen not in HUMAN_DECISIONS:
        context.deny(
            InvalidRequest(
                "decision must be approve, rework, or cancel",
                code="AUTOMATION_V2_GATE_INVALID_DECISION",
                runID=run.run_id,
            )
        )
    context.decision = chosen
    if chosen not in gate.decisions:
        context.deny(
            InvalidRequest(
                "This gate does not offer that decision",
                code="AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED",
                runID=run.run_id,
                nodeID=gate.node_id,
                decisions=gate.decisions,
            )
        )
    mismatch = _guard_mismatch(gate, request_id, transition)
    if mismatch is not None:
        _guard_deny(context, gate, mismatch, request_id, transition)
    if gate_expired(gate, timezone.now()):
        context.deny(_expired(context, gate))
    policy = GatePolicy.of(gate.policy)
    code = self_approval_refusal(actor=actor, run=run, policy=policy, decision=chosen)
    code = code or authority_refusal(actor=actor, policy=policy, held=held, workspace=run.workspace)
    if code is not None:
        context.deny(Forbidden(MESSAGES[code], code=code, **context.ids()))
    reason = (reason or "").strip() or None
    try:
        return _apply(context, gate, chosen, reason)
    except _Lost as lost:
        context.deny(lost.error)


def gate_expired(gate: Gate, now: datetime) -> bool:
    """Whether a decision on this opening comes too late (SPEC §6.5, §14): the sweep expired
    it, or its `expires_at` has passed (a human decision is refused even before the sweep
    runs: fail closed)."""
    return gate.status == GateStatus.EXPIRED or gate.expires_at <= now


# --- refusals -----------------------------------------------------------------------------------


@dataclass
class _Context:
    actor: Actor
    run: Run
    source: str
    gate: Gate | None = None
    decision: str | None = None

    def ids(self) -> dict[str, Any]:
        return {
            "runID": self.run.run_id,
            "automationID": self.run.automation.automation_id,
            "nodeID": self.gate.node_id if self.gate is not None else None,
            "decidedBy": self.decided_by(),
        }

    def decided_by(self) -> dict[str, str]:
        return {**self.actor.describe(), "source": self.source}

    def deny(self, error: FlowgateError) -> NoReturn:
        """Audit the refusal in its own committed transaction, then raise it."""
        with transaction.atomic():
            self.audit_denial(error)
        raise error

    def audit_denial(self, error: FlowgateError) -> None:
        """Append the refusal's audit event to the current transaction."""
        audit_record(
            workspace=self.run.workspace,
            event_type="automation.governance.gate_decision_denied",
            actor=self.actor,
            payload={
                "runID": self.run.run_id,
                "automationID": self.run.automation.automation_id,
                "nodeID": self.gate.node_id if self.gate is not None else None,
                "gateID": self.gate.pk if self.gate is not None else None,
                "decision": self.decision,
                "code": error.code,
                "status": error.status,
                "decidedBy": self.decided_by(),
            },
        )


class _Lost(Exception):
    """The run or gate changed between the checks and the locks (a concurrent decision, a
    repair, the expiry sweep): the transaction is rolled back and the refusal audited."""

    def __init__(self, error: FlowgateError):
        self.error = error


def _not_awaiting_or_expired(run: Run, status: str, request_id, transition) -> FlowgateError:
    """409 for a run not waiting on a gate: GATE_EXPIRED when the targeted opening (the one the
    ids name, else the run's latest) expired, else NOT_AWAITING_APPROVAL with the winner."""
    gates = Gate.objects.filter(run=run)
    target = None
    if request_id or transition:
        gate_id = request_id or transition.removesuffix(":decision")
        target = gates.filter(pk=gate_id).first()
    if target is None:
        target = gates.order_by("-requested_at", "-round").first()
    if target is not None and (
        target.status == GateStatus.EXPIRED
        or (target.status == GateStatus.OPEN and gate_expired(target, timezone.now()))
    ):
        return Conflict(
            "Approval gate expired before this decision was submitted",
            code=EXPIRED,
            runID=run.run_id,
            automationID=run.automation.automation_id,
            nodeID=target.node_id,
        )
    return not_awaiting(run, status, target.node_id if target is not None else None)


def not_awaiting(run: Run, status: str, node_id: str | None) -> Conflict:
    """409 NOT_AWAITING_APPROVAL with `currentStatus` and, when there is one, the most recent
    settled decision of the gate node `node_id` (any opening of it)."""
    extra: dict[str, Any] = {"runID": run.run_id, "currentStatus": status}
    winner = (
        GateDecision.objects.filter(run=run, node_id=node_id, settles=True)
        .select_related("gate")
        .order_by("-decided_at", "-id")
        .first()
        if node_id
        else None
    )
    if winner is not None:
        extra["winningDecision"] = {
            "node_id": winner.node_id,
            "decision": winner.decision,
            "reason": winner.reason or None,
            "decided_at_ms": int(winner.decided_at.timestamp() * 1000),
            "approval_request_id": winner.gate_id,
            "round": winner.gate.round,
        }
    return Conflict("Run is not awaiting approval", code=NOT_AWAITING, **extra)


def _expired(context: _Context, gate: Gate) -> Conflict:
    return Conflict(
        "Approval gate expired before this decision was submitted",
        code=EXPIRED,
        **context.ids(),
    )


def _guard_mismatch(gate: Gate, request_id: str | None, transition: str | None) -> str | None:
    """The original's transition guard (reference §4.3): given ids must name the open gate."""
    if request_id is not None and request_id != gate.pk:
        return "approval_request_id_mismatch"
    if transition is not None and transition != gate.transition_id:
        return "transition_id_mismatch"
    return None


def _guard_deny(
    context: _Context, gate: Gate, reason_code: str, request_id, transition
) -> NoReturn:
    """Record the guard denial on the open gate (a `guard_denied` entry that settles nothing),
    its lifecycle event and the audit event in one committed transaction, then raise 409.

    The run row is locked first (the fixed order), so the record lands on a gate that is still
    open; if it closed meanwhile the caller gets the not-awaiting answer instead.
    """
    run = context.run
    guard = {
        "reason_code": reason_code,
        "run_id": run.run_id,
        "automation_id": run.automation.automation_id,
        "node_id": gate.node_id,
        "expected_approval_request_id": gate.pk,
        "expected_transition_id": gate.transition_id,
        "given_approval_request_id": request_id,
        "given_transition_id": transition,
    }
    detail = f"approval transition guard denied for gate `{gate.node_id}`: {reason_code}"
    error = Conflict(detail, code=GUARD_DENIED, **context.ids(), transitionGuard=guard)
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        still_open = (
            Gate.objects.select_for_update().filter(pk=gate.pk, status=GateStatus.OPEN).first()
        )
        if locked.status != RunStatus.AWAITING_APPROVAL or still_open is None:
            error = not_awaiting(run, locked.status, gate.node_id)
        else:
            GateDecision.objects.create(
                gate=gate,
                run=locked,
                node_id=gate.node_id,
                decision=Decision.GUARD_DENIED,
                settles=False,
                reason=detail,
                decided_by=context.actor.user,
                decider_kind=context.actor.kind,
                source=context.source,
                reviewed_digest=gate.reviewed_digest,
                metadata={"transition_guard_denial": guard, "attempted": context.decision},
            )
            LifecycleEvent.objects.create(
                run=locked,
                event="approval_gate_transition_guard_denied",
                reason=detail,
                metadata={**guard, "gate_id": gate.pk, "round": gate.round},
            )
        # The guard_denied record, its lifecycle event and the audit event commit together.
        context.audit_denial(error)
    raise error


# --- applying -----------------------------------------------------------------------------------


def _apply(context: _Context, gate: Gate, decision: str, reason: str | None) -> Outcome:
    from automations import tasks

    actor, now = context.actor, timezone.now()
    with transaction.atomic():
        # `of=("self",)`: lock the run row only. Without it PostgreSQL also locks the joined
        # automation row, after the run, which deadlocks with repair (automation → run).
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("automation")
            .get(pk=context.run.pk)
        )
        nodes = {
            n.node_id: n for n in RunNode.objects.select_for_update().filter(run=run).order_by("pk")
        }
        locked_gate = Gate.objects.select_for_update().get(pk=gate.pk)
        if gate_expired(locked_gate, now):
            raise _Lost(_expired(context, locked_gate))
        if run.status != RunStatus.AWAITING_APPROVAL or locked_gate.status != GateStatus.OPEN:
            raise _Lost(not_awaiting(run, run.status, gate.node_id))
        decided_by = context.decided_by()
        try:
            with transaction.atomic():
                record = GateDecision.objects.create(
                    gate=locked_gate,
                    run=run,
                    node_id=gate.node_id,
                    decision=decision,
                    settles=True,
                    reason=reason or "",
                    decided_by=actor.user,
                    decider_kind=actor.kind,
                    source=context.source,
                    reviewed_digest=locked_gate.reviewed_digest,
                    metadata={
                        "approval_request_id": locked_gate.pk,
                        "transition_id": locked_gate.transition_id,
                        "round": locked_gate.round,
                    },
                )
        except IntegrityError:
            raise _Lost(not_awaiting(run, run.status, gate.node_id)) from None
        source_status = run.status
        change = _Change(run=run, nodes=nodes, gate=locked_gate, now=now, reason=reason)
        APPLY[decision](change, record, decided_by)
        run.lease_owner = ""
        run.lease_expires_at = None
        run.version += 1
        run.save(update_fields=RUN_CONTROL_FIELDS)
        touched = [nodes[n] for n in sorted(change.touched) if n in nodes]
        for node in touched:
            node.updated_at = now  # bulk_update does not apply `auto_now`
        if touched:
            RunNode.objects.bulk_update(touched, NODE_CONTROL_FIELDS)
        locked_gate.status = GateStatus.DECIDED
        locked_gate.closed_at = now
        locked_gate.save(update_fields=["status", "closed_at"])
        events = [
            lifecycle_event(
                run,
                "approval_gate_decided",
                reason=reason or "",
                node_id=gate.node_id,
                gate_id=locked_gate.pk,
                round=locked_gate.round,
                decision=decision,
                decided_by=decided_by,
                reviewed_digest=locked_gate.reviewed_digest,
                **change.metadata,
            ),
            *change.events,
        ]
        LifecycleEvent.objects.bulk_create(events)
        audit_record(
            workspace=run.workspace,
            event_type="automation.governance.gate_decided",
            actor=actor,
            payload={
                "runID": run.run_id,
                "automationID": run.automation.automation_id,
                "nodeID": gate.node_id,
                "gateID": locked_gate.pk,
                "round": locked_gate.round,
                "decision": decision,
                "reason": reason,
                "decidedBy": decided_by,
                "reviewedDigest": locked_gate.reviewed_digest,
                "fromStatus": source_status,
                "toStatus": run.status,
                **change.audit,
            },
        )
        if run.status == RunStatus.QUEUED:
            transaction.on_commit(lambda: tasks.schedule_advance(run.run_id))
        transaction.on_commit(lambda: hooks.gate_decided(locked_gate.pk))
    return Outcome(run=run, gate=locked_gate, record=record)


@dataclass
class _Change:
    run: Run
    nodes: dict[str, RunNode]
    gate: Gate
    now: datetime
    reason: str | None
    touched: set[str] = field(default_factory=set)
    metadata: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    events: list[LifecycleEvent] = field(default_factory=list)


def _requeue(change: _Change, decision: str, detail: str) -> None:
    """The run fields approve and rework set: back to `queued`, stop and pause fields cleared."""
    run = change.run
    run.status = RunStatus.QUEUED
    run.detail = detail
    run.resume_reason = f"gate `{change.gate.node_id}` decision: {decision}"
    run.pause_reason = ""
    run.stop_kind = ""
    run.stop_reason = ""
    run.finished_at = None


def _apply_approve(change: _Change, record: GateDecision, decided_by: dict) -> None:
    """The gate node completes with the approval as its output; its descendants run next."""
    node_id = change.gate.node_id
    node = change.nodes[node_id]
    node.state = NodeState.COMPLETED
    node.output = {
        "contract_kind": "approval_gate",
        "status": "completed",
        "summary": f"Gate `{node_id}` approved.",
        "node_id": node_id,
        "content": {
            "decision": "approve",
            "reason": change.reason,
            "decided_by": decided_by,
            "decided_at_ms": int(change.now.timestamp() * 1000),
            "reviewed_digest": change.gate.reviewed_digest,
            "approval_request_id": change.gate.pk,
            "round": change.gate.round,
        },
    }
    node.attempt_token = None
    node.task_id = ""
    node.not_before = None
    node.finished_at = change.now
    change.touched.add(node_id)
    if isinstance(change.run.last_failure, dict) and (
        change.run.last_failure.get("node_id") == node_id
    ):
        change.run.last_failure = None
    _requeue(change, "approve", f"gate `{node_id}` approved")


def _apply_rework(change: _Change, record: GateDecision, decided_by: dict) -> None:
    """Reset the rework targets' (else the gate's upstream nodes') descendant subtree and the
    gate: outputs and attempts cleared, nodes pending. The engine reopens the gate as a new
    opening (next round) when the subtree reaches it again."""
    gate = change.gate
    spec = RunSpec.from_snapshot(change.run.automation_snapshot)
    roots = [*(gate.rework_targets or gate.upstream_node_ids), gate.node_id]
    reset = sorted(descendants(spec.nodes.values(), roots) & set(spec.order))
    for node_id in reset:
        node = change.nodes.get(node_id)
        if node is None:
            continue
        node.state = NodeState.PENDING
        node.output = None
        node.attempts = 0
        node.attempt_token = None
        node.task_id = ""
        node.not_before = None
        node.started_at = None
        node.finished_at = None
        change.touched.add(node_id)
    change.run.last_failure = None
    _requeue(change, "rework", f"gate `{gate.node_id}` sent work back for rework")
    change.metadata["reset_nodes"] = reset
    change.audit["resetNodes"] = reset


def _apply_cancel(change: _Change, record: GateDecision, decided_by: dict) -> None:
    """The run is cancelled (`stop_kind = cancelled`, `run_cancelled`); the gate node is not
    completed, so nothing downstream ever runs."""
    run = change.run
    stop_reason = change.reason or f"gate `{change.gate.node_id}` cancelled the run"
    run.status = RunStatus.CANCELLED
    run.detail = stop_reason
    run.stop_kind = StopKind.CANCELLED
    run.stop_reason = stop_reason
    run.finished_at = change.now
    change.events.append(
        lifecycle_event(
            run,
            "run_cancelled",
            reason=stop_reason,
            stop_kind=StopKind.CANCELLED,
            node_id=change.gate.node_id,
            gate_id=change.gate.pk,
        )
    )


APPLY = {"approve": _apply_approve, "rework": _apply_rework, "cancel": _apply_cancel}
