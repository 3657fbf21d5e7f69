"""Deciding a gate: the one service every surface calls (API, admin, approval pages, chat).

`gate_decide` takes the run's lock and then checks, in SPEC §6.3's order and all under that
lock (so nothing checked can change before the decision commits):

1. the run is visible to the caller (404 `AUTOMATION_V2_RUN_NOT_FOUND`, by the caller's lookup)
   and its automation is live (404 `AUTOMATION_V2_NOT_FOUND` once it is soft-deleted, judged on
   the row read under the lock, so a caller holding a run read before the deletion is refused);
2. the actor is human (403 `AUTOMATION_V2_GATE_REQUIRES_HUMAN`);
3. the review permission on the automation, or on this opening when it was escalated to the
   actor (403 `AUTOMATION_V2_ACCESS_DENIED`);
4. the run is `awaiting_approval` (409 `AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL` with
   `currentStatus` and the `winningDecision` of the most recent settled decision of the same
   gate node — SPEC §10.9), except that a decision aimed at an expired opening gets 409
   `AUTOMATION_V2_GATE_EXPIRED` even after the sweep cancelled the run (SPEC §14);
5. the decision is approve / rework / cancel, trimmed and case-insensitive (400
   `AUTOMATION_V2_GATE_INVALID_DECISION`) and offered by this gate (400
   `AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED`); on an approval request's gate, an approval's
   edits and response fit the request (400, `approvals.request_answers`), and the policy of
   the approved arguments replaces the gate's for the checks below;
6. `approval_request_id` / `transition_id`, when given, name the open gate (409
   `AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED`; a `guard_denied` record that settles nothing,
   lifecycle `approval_gate_transition_guard_denied`);
7. the gate has not expired (409 `AUTOMATION_V2_GATE_EXPIRED`);
8. separation of duties (403 `AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN` with a `reason`
   naming the rule) and 9. reviewer authority (403), both from `approvals.policy`.

Every refusal after step 1's lookup is audited `automation.governance.gate_decision_denied`
with its code: the denial's writes replace the decision's in the same transaction, which
commits, and the error is raised after the commit (kept although the request fails).

Lock order (STYLE.md, as the engine and run control): run row, its node rows, the gate row,
and last (inside `audit_record`) the audit chain head. The GateDecision insert is the final
arbiter: the partial unique constraint `one_settling_decision_per_gate` lets exactly one
settling decision exist per opening, so a writer that somehow got past the run lock still
loses with 409. The decision, the node/run change, the gate's closing, the lifecycle events and
the audit event `automation.governance.gate_decided` commit together (SPEC §10.8); the run's
status changes through the run state machine (`automations.runs.state`); after commit the run's
execution is scheduled (approve, rework) and `approvals.signals.gate_closed` is sent.

The transaction is kept short because the audit chain head serialises every decision of a
workspace (docs/performance.md): the permissions and clearances are one query, the writes are
single statements, and the history a caller wants to render (`with_history`) is read before
the writes rather than re-read after the commit.

Decisions are keyed by gate *opening* (the Gate row): an opening superseded by a repair, reset
or cancel is closed, so a decision naming it is refused and never settles a later opening.

Two additions keep their rules in their own modules:
- delegation (`approvals.delegation`): when the actor's own review permission or authority
  falls short, an active delegator's is used (`_Context.on_behalf_of`, recorded with the
  decision); separation of duties is then checked for both people. Not on a standing
  approval's use (surface `standing`): that is the grantor's own decision, made in advance;
- quorum (`approvals.quorum`): an approve of a gate whose policy asks for more than one
  approval is refused with 409 `AUTOMATION_V2_GATE_ALREADY_APPROVED` when the same person
  approved this opening already, settles the gate like any approve when it completes the
  quorum, and is otherwise recorded as an approval that settles nothing (audited
  `automation.governance.gate_approval_recorded`, `gate_progress` sent after commit). Rework
  and cancel settle at once, whatever approvals were given (a veto). All of it happens under
  the same run lock, so of the approvers racing for the last approval exactly one settles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import signals
from approvals.delegation import delegated_authority
from approvals.events import APPROVAL_RECORDED, DECIDED, gate_event
from approvals.models import HUMAN_DECISIONS, Decision, Gate, GateDecision, GateStatus, Surface
from approvals.policy import (
    MESSAGES,
    SELF_APPROVAL_FORBIDDEN,
    GatePolicy,
    authority_refusal,
    escalation_grants,
    separation_refusal,
)
from approvals.quorum import (
    ALREADY_APPROVED,
    ALREADY_APPROVED_MESSAGE,
    Approval,
    approvals_of,
    member_groups,
)
from approvals.request_answers import Answer, request_answer
from automations import scheduling
from automations.flow import descendants
from automations.lifecycle import lifecycle_event
from automations.models import (
    Automation,
    LifecycleEvent,
    NodeState,
    Run,
    RunNode,
    RunStatus,
    StopKind,
)
from automations.run_spec import RunSpec
from automations.runs import state
from automations.runs.transitions import Cause
from governance.actors import Actor
from governance.audit import audit_record
from governance.errors import Conflict, FlowgateError, Forbidden, InvalidRequest, NotFound
from governance.models import User, clearance_codename
from governance.policy import Action, authorize, automation_permissions

__all__ = ["Outcome", "gate_decide", "gate_expired", "not_awaiting"]

# Joined columns a decision never reads (the automation's definition — the run carries its own
# snapshot — and the requester's profile): not decoded on every decision.
LOCK_DEFERRED = (
    *(
        f"automation__{f.name}"
        for f in Automation._meta.concrete_fields
        if f.name not in ("id", "automation_id", "workspace", "created_by", "deleted_at")
    ),
    *(
        f"requested_by__{f.name}"
        for f in User._meta.concrete_fields
        if f.name not in ("id", "username")
    ),
)
# What the run JSON's `gate_history` reads of each decision (`run_json.decision_json`).
HISTORY_COLUMNS = (
    *(f.name for f in GateDecision._meta.concrete_fields if f.name != "metadata"),
    "gate__round",
    "decided_by__username",
    "on_behalf_of__username",
)
NOT_AWAITING = "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
GUARD_DENIED = "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
EXPIRED = "AUTOMATION_V2_GATE_EXPIRED"
ASSURANCE_INSUFFICIENT = "AUTOMATION_V2_GATE_CHAT_ASSURANCE_INSUFFICIENT"
ASSURANCE_MESSAGE = (
    "This chat connection's requests are verified with a secret a workspace admin holds: "
    "approve this consequential action on the approval page"
)


@dataclass(frozen=True)
class Outcome:
    """An applied decision: the run, its nodes and gate as written, and the decision record.

    With `with_history`, `lifecycle` and `history` hold the run's whole lifecycle and gate
    history as committed (the run JSON's); otherwise they are empty.
    """

    run: Run
    gate: Gate
    record: GateDecision
    nodes: list[RunNode] = field(default_factory=list)
    lifecycle: list[LifecycleEvent] = field(default_factory=list)
    history: list[GateDecision] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return self.record.decision

    @property
    def settled(self) -> bool:
        """False for an approval recorded towards a quorum that is not met yet: the gate stays
        open and the run waits (`gate.quorum` says how far it got)."""
        return self.record.settles


def gate_decide(
    *,
    actor: Actor,
    run: Run,
    decision: Any,
    reason: str | None = None,
    approval_request_id: str | None = None,
    transition_id: str | None = None,
    source: str = "api",
    assured: bool = True,
    with_history: bool = False,
    arguments: Any = None,
    response: Any = None,
) -> Outcome:
    """Decide the open gate of `run` as `actor` (see the module docstring for the checks).

    `run` is the caller's run in the caller's workspace; it is re-read under the lock, so only
    its key matters. `source` is the surface (`decided_by.source`). `assured` is False when
    the surface cannot prove who clicked (a chat connection verified with a secret a workspace
    admin holds): such an *approve* of a consequential gate is refused with 403
    `AUTOMATION_V2_GATE_CHAT_ASSURANCE_INSUFFICIENT` (audited; the surface points the user to
    the approval page); rework and cancel are not. Raises typed errors
    (`Forbidden`, `Conflict`, `InvalidRequest`, `NotFound`) mapped to the JSON error shape.

    On the gate of an approval request (`approvals.request_answers`), an approve may carry
    edited `arguments` and the form's `response`; the actor is then judged by the policy of the
    approved arguments, and the request row records what was approved.
    """
    context = _Context(
        actor=actor,
        run=run,
        source=source,
        assured=assured,
        submitted=(decision if isinstance(decision, str) else "").strip().lower(),
        reason=(reason or "").strip() or None,
        request_id=(approval_request_id or "").strip() or None,
        transition=(transition_id or "").strip() or None,
        with_history=with_history,
        arguments=arguments,
        response=response,
    )
    try:
        with transaction.atomic():
            result = _decide_locked(context)
            if isinstance(result, FlowgateError):
                context.audit_denial(result)  # commits instead of the decision
    except IntegrityError:
        # A settling decision of this opening committed although we held the run lock (only a
        # writer bypassing the lock order could do that): the constraint refused ours.
        status = Run.objects.only("status").get(pk=context.run.pk).status
        result = not_awaiting(context.run, status, _node_id(context))
        with transaction.atomic():
            context.audit_denial(result)
    if isinstance(result, FlowgateError):
        raise result
    return result


def gate_expired(gate: Gate, now: datetime) -> bool:
    """Whether a decision on this opening comes too late (SPEC §6.5, §14): the sweep expired
    it, or its `expires_at` has passed (a human decision is refused even before the sweep
    runs: fail closed)."""
    return gate.status == GateStatus.EXPIRED or gate.expires_at <= now


# --- checks -------------------------------------------------------------------------------------


@dataclass
class _Context:
    actor: Actor
    run: Run
    source: str
    assured: bool
    submitted: str
    reason: str | None
    request_id: str | None
    transition: str | None
    with_history: bool
    arguments: Any = None
    response: Any = None
    answer: Answer | None = None
    gate: Gate | None = None
    decision: str | None = None  # the submitted decision once it is known to be valid
    # Under delegation (`approvals.delegation`): the delegator whose authority the actor uses.
    on_behalf_of: Actor | None = None
    # Quorum gates (`approvals.quorum`): the approver's groups and the progress with this approval.
    quorum_groups: tuple[str, ...] = ()
    progress: dict[str, Any] = field(default_factory=dict)

    def ids(self) -> dict[str, Any]:
        return {
            "runID": self.run.run_id,
            "automationID": self.run.automation.automation_id,
            "nodeID": _node_id(self),
            "decidedBy": self.decided_by(),
        }

    def decided_by(self) -> dict[str, str]:
        described = {**self.actor.describe(), "source": self.source}
        if self.on_behalf_of is not None:
            described["on_behalf_of"] = self.on_behalf_of.actor_id
        return described

    def audit_extra(self) -> dict[str, Any]:
        """What a decision's audit event adds under delegation and on a quorum gate."""
        extra: dict[str, Any] = {}
        if self.on_behalf_of is not None:
            extra["onBehalfOf"] = self.on_behalf_of.actor_id
        if self.progress:
            extra["quorum"] = self.progress
        return extra

    def audit_denial(self, error: FlowgateError) -> None:
        """Append the refusal's audit event to the current transaction."""
        audit_record(
            workspace=self.run.workspace,
            event_type="automation.governance.gate_decision_denied",
            actor=self.actor,
            payload={
                "runID": self.run.run_id,
                "automationID": self.run.automation.automation_id,
                "nodeID": _node_id(self),
                "gateID": self.gate.pk if self.gate is not None else None,
                "decision": self.decision,
                "code": error.code,
                "status": error.status,
                "decidedBy": self.decided_by(),
            },
        )


def _node_id(context: _Context) -> str | None:
    return context.gate.node_id if context.gate is not None else None


def _decide_locked(context: _Context) -> Outcome | FlowgateError:
    """Lock the run, its nodes and its open gate, check in SPEC order, apply. Returns the
    outcome, or the refusal for the caller to audit in this same transaction."""
    actor = context.actor
    found = list(
        # `of=("self",)`: lock the run row only. Without it PostgreSQL also locks the joined
        # automation row, after the run, which deadlocks with repair (automation → run).
        Run.objects.select_for_update(of=("self",))
        .select_related("automation", "requested_by", "workspace__organization")
        .defer(*LOCK_DEFERRED)
        .filter(pk=context.run.pk)
    )
    if not found:
        raise NotFound("Run not found", code="AUTOMATION_V2_RUN_NOT_FOUND")
    run = context.run = found[0]
    nodes = list(RunNode.objects.select_for_update().filter(run=run).order_by("pk"))
    gate = (
        Gate.objects.select_for_update()
        .filter(run=run, status=GateStatus.OPEN)
        .order_by("-round")
        .first()
    )
    context.gate = gate
    if not actor.is_human:
        return Forbidden(
            "Approval gate decisions require a verified human approver",
            code="AUTOMATION_V2_GATE_REQUIRES_HUMAN",
        )
    policy = GatePolicy.of(gate.policy if gate is not None else None)
    held = automation_permissions(actor, run.automation, clearances=policy.data_classes)
    if gate is not None:
        held |= escalation_grants(gate, actor)
    try:
        authorize(actor, Action.REVIEW, run.automation, audit=False, held=held)
    except FlowgateError as refusal:  # 404 for a deleted automation, else 403
        lent = None if refusal.status == 404 else _delegated(context, policy)
        if lent is None:
            return refusal
        held = lent
    if run.status != RunStatus.AWAITING_APPROVAL:
        return _not_awaiting_or_expired(context, run.status)
    if gate is None:
        # Cannot happen through the services (a gate opens in the transaction that parks the
        # run, and closes in the one that moves it on); kept so a hand-edited run answers
        # clearly instead of failing.
        latest = Gate.objects.filter(run=run).order_by("-round").first()
        if latest is not None and gate_expired(latest, timezone.now()):
            context.gate = latest
            return _expired(context)
        return Conflict(
            "Run has no pending gate", code="AUTOMATION_V2_RUN_GATE_MISSING", runID=run.run_id
        )
    chosen = context.submitted
    if chosen not in HUMAN_DECISIONS:
        return InvalidRequest(
            "decision must be approve, rework, or cancel",
            code="AUTOMATION_V2_GATE_INVALID_DECISION",
            runID=run.run_id,
        )
    context.decision = chosen
    if chosen not in gate.decisions:
        return InvalidRequest(
            "This gate does not offer that decision",
            code="AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED",
            runID=run.run_id,
            nodeID=gate.node_id,
            decisions=gate.decisions,
        )
    try:
        context.answer = request_answer(
            run=run,
            gate=gate,
            decision=chosen,
            arguments=context.arguments,
            response=context.response,
        )
    except InvalidRequest as refusal:
        return refusal
    if context.answer is not None:  # judged by what the approval covers (edits included)
        policy = context.answer.policy
    mismatch = _guard_mismatch(gate, context.request_id, context.transition)
    if mismatch is not None:
        return _guard_deny(context, mismatch)
    now = timezone.now()
    if gate_expired(gate, now):
        return _expired(context)
    if not context.assured and chosen == "approve" and policy.consequential:
        return Forbidden(ASSURANCE_MESSAGE, code=ASSURANCE_INSUFFICIENT, **context.ids())
    principal = context.on_behalf_of or actor
    # An answer's policy may name classes `held` was not read with: read them afresh.
    cleared = (
        frozenset(c for c in policy.data_classes if clearance_codename(c) in held)
        if context.answer is None
        else None
    )
    code = authority_refusal(
        actor=principal, policy=policy, held=held, workspace=run.workspace, cleared=cleared
    )
    if code is not None and context.on_behalf_of is None and _delegated(context, policy):
        code = None
    separation = _separation(context, policy)
    if separation is not None:
        return separation
    if code is not None:
        return Forbidden(MESSAGES[code], code=code, **context.ids())
    if chosen == "approve" and not policy.quorum.single:
        return _approve_towards_quorum(context, nodes, now, policy)
    return _apply(context, nodes, now)


def _delegated(context: _Context, policy: GatePolicy) -> frozenset[str] | None:
    """When the actor's own authority falls short: the permissions of an active delegator who
    has enough (`approvals.delegation`), recorded as `context.on_behalf_of`; else None.

    Never for a standing approval's use (`approvals.standing`): it is the grantor's own
    decision made in advance, valid only while the grantor could still make it themselves; a
    delegation lends authority to the decisions a delegate makes, and the delegator approved
    nothing in advance."""
    if context.source == Surface.STANDING:
        return None
    found = delegated_authority(
        actor=context.actor, run=context.run, gate=context.gate, policy=policy, now=timezone.now()
    )
    if found is None:
        return None
    context.on_behalf_of, held = found
    return held


def _separation(context: _Context, policy: GatePolicy) -> Forbidden | None:
    """Separation of duties for the actor and, under delegation, for the delegator too: a
    delegation never lets anyone approve work either of them is accountable for."""
    for person, prefix in ((context.actor, ""), (context.on_behalf_of, "on_behalf_of:")):
        if person is None:
            continue
        rule = separation_refusal(
            actor=person, run=context.run, policy=policy, decision=context.decision
        )
        if rule is not None:
            return Forbidden(
                MESSAGES[SELF_APPROVAL_FORBIDDEN],
                code=SELF_APPROVAL_FORBIDDEN,
                reason=f"{prefix}{rule.name}",
                **context.ids(),
            )
    return None


def _not_awaiting_or_expired(context: _Context, status: str) -> FlowgateError:
    """409 for a run not waiting on a gate: GATE_EXPIRED when the targeted opening (the one the
    ids name, else the run's latest) expired, else NOT_AWAITING_APPROVAL with the winner."""
    run, request_id, transition = context.run, context.request_id, context.transition
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


def _expired(context: _Context) -> Conflict:
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


def _guard_deny(context: _Context, reason_code: str) -> Conflict:
    """Record the guard denial on the open gate (a `guard_denied` entry that settles nothing)
    and its lifecycle event; the caller adds the audit event to the same transaction."""
    run, gate = context.run, context.gate
    guard = {
        "reason_code": reason_code,
        "run_id": run.run_id,
        "automation_id": run.automation.automation_id,
        "node_id": gate.node_id,
        "expected_approval_request_id": gate.pk,
        "expected_transition_id": gate.transition_id,
        "given_approval_request_id": context.request_id,
        "given_transition_id": context.transition,
    }
    detail = f"approval transition guard denied for gate `{gate.node_id}`: {reason_code}"
    GateDecision.objects.create(
        gate=gate,
        run=run,
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
        run=run,
        event="approval_gate_transition_guard_denied",
        reason=detail,
        metadata={**guard, "gate_id": gate.pk, "round": gate.round},
    )
    return Conflict(detail, code=GUARD_DENIED, **context.ids(), transitionGuard=guard)


# --- applying -----------------------------------------------------------------------------------


def _history_before_writes(context: _Context) -> tuple[list, list]:
    """With `with_history`, the run's lifecycle and gate history as committed so far, read
    before the writes, which then extend them in memory; else two empty lists."""
    if not context.with_history:
        return [], []
    run = context.run
    return list(LifecycleEvent.objects.filter(run=run)), list(
        GateDecision.objects.filter(run=run)
        .select_related("decided_by", "on_behalf_of", "gate")
        .only(*HISTORY_COLUMNS)
    )


def _apply(context: _Context, nodes: list[RunNode], now: datetime) -> Outcome:
    """Write the decision and its effects; the locks are held and every check passed."""
    actor, run, gate, decision = context.actor, context.run, context.gate, context.decision
    answer = context.answer
    bound = answer.metadata(gate) if answer is not None else None
    lifecycle, history = _history_before_writes(context)
    decided_by = context.decided_by()
    record = _record(context, settles=True, request=bound)
    # Before the run's own move, so `gate.decided` precedes a `run.cancelled` it causes.
    gate_event(
        DECIDED,
        gate,
        run=run,
        decision=decision,
        reason=context.reason or "",
        decided_by=decided_by,
        decided_at=record.decided_at,
    )
    source_status = run.status
    by_id = {n.node_id: n for n in nodes}
    change = _Change(run=run, nodes=by_id, gate=gate, now=now, reason=context.reason)
    (APPLY if answer is None else APPLY_TO_REQUEST)[decision](change, record, decided_by)
    if answer is not None:
        answer.settle(record)
    state.run_save(run)
    state.nodes_save([by_id[n] for n in sorted(change.touched) if n in by_id], now=now)
    gate.status = GateStatus.DECIDED
    gate.closed_at = now
    closing = ["status", "closed_at"]
    if context.progress:
        gate.quorum = context.progress
        closing.append("quorum")
    gate.save(update_fields=closing)
    events = [
        lifecycle_event(
            run,
            "approval_gate_decided",
            reason=context.reason or "",
            node_id=gate.node_id,
            gate_id=gate.pk,
            round=gate.round,
            decision=decision,
            decided_by=decided_by,
            reviewed_digest=gate.reviewed_digest,
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
            "gateID": gate.pk,
            "round": gate.round,
            "decision": decision,
            "reason": context.reason,
            "decidedBy": decided_by,
            "reviewedDigest": gate.reviewed_digest,
            "fromStatus": source_status,
            "toStatus": run.status,
            **change.audit,
            **context.audit_extra(),
            **({"approvalRequest": bound} if bound is not None else {}),
        },
    )
    if run.status == RunStatus.QUEUED:
        scheduling.advance_after_commit(run.run_id)
    signals.send_after_commit(
        signals.gate_closed, gate_id=gate.pk, outcome=signals.DECIDED, decision=decision
    )
    if context.with_history:
        lifecycle += events
        history.append(record)
    return Outcome(
        run=run, gate=gate, record=record, nodes=nodes, lifecycle=lifecycle, history=history
    )


def _record(context: _Context, *, settles: bool, request: dict | None = None) -> GateDecision:
    """Insert the decision entry: the first write of `_apply` (no savepoint: when a constraint
    refuses it the whole transaction goes and `gate_decide` answers 409) and of a partial
    approval."""
    actor, gate = context.actor, context.gate
    metadata: dict[str, Any] = {
        "approval_request_id": gate.pk,
        "transition_id": gate.transition_id,
        "round": gate.round,
    }
    if context.progress:
        metadata.update(quorum_groups=list(context.quorum_groups), quorum=context.progress)
    if request is not None:  # what an approval request's decision approved (`Answer.metadata`)
        metadata["request"] = request
    return GateDecision.objects.create(
        gate=gate,
        run=context.run,
        node_id=gate.node_id,
        decision=context.decision,
        settles=settles,
        reason=context.reason or "",
        decided_by=actor.user,
        on_behalf_of=context.on_behalf_of.user if context.on_behalf_of else None,
        decider_kind=actor.kind,
        source=context.source,
        reviewed_digest=gate.reviewed_digest,
        metadata=metadata,
    )


# --- quorum (approvals.quorum holds the counting rules) ------------------------------------------


def _approve_towards_quorum(
    context: _Context, nodes: list[RunNode], now: datetime, policy: GatePolicy
) -> Outcome | FlowgateError:
    """An approval of a quorum gate: refused (409) when this person already approved this
    opening; the settling approve when it completes the quorum; otherwise recorded, audited and
    announced (`gate_progress`) while the gate stays open and the run waits."""
    gate, actor = context.gate, context.actor
    counted = context.on_behalf_of or actor
    given = approvals_of(gate)
    if any(a.approver == actor.actor_id or a.counted == counted.actor_id for a in given):
        return Conflict(
            ALREADY_APPROVED_MESSAGE, code=ALREADY_APPROVED, quorum=gate.quorum, **context.ids()
        )
    context.quorum_groups = member_groups(
        workspace=context.run.workspace, user=counted.user, quorum=policy.quorum
    )
    mine = Approval(
        approver=actor.actor_id,
        on_behalf_of=context.on_behalf_of.actor_id if context.on_behalf_of else None,
        groups=context.quorum_groups,
    )
    context.progress = policy.quorum.progress([*given, mine])
    if context.progress["met"]:
        return _apply(context, nodes, now)
    return _record_partial_approval(context, nodes)


def _record_partial_approval(context: _Context, nodes: list[RunNode]) -> Outcome:
    run, gate = context.run, context.gate
    lifecycle, history = _history_before_writes(context)
    record = _record(context, settles=False)
    gate.quorum = context.progress
    gate.save(update_fields=["quorum"])
    event = lifecycle_event(
        run,
        "approval_gate_approval_recorded",
        reason=context.reason or "",
        node_id=gate.node_id,
        gate_id=gate.pk,
        round=gate.round,
        decided_by=context.decided_by(),
        quorum=context.progress,
    )
    event.save()
    gate_event(
        APPROVAL_RECORDED,
        gate,
        run=run,
        decided_by=context.decided_by(),
        decided_at=record.decided_at,
        quorum=context.progress,
    )
    audit_record(
        workspace=run.workspace,
        event_type="automation.governance.gate_approval_recorded",
        actor=context.actor,
        payload={
            "runID": run.run_id,
            "automationID": run.automation.automation_id,
            "nodeID": gate.node_id,
            "gateID": gate.pk,
            "round": gate.round,
            "reason": context.reason,
            "decidedBy": context.decided_by(),
            "reviewedDigest": gate.reviewed_digest,
            **context.audit_extra(),
        },
    )
    signals.send_after_commit(signals.gate_progress, gate_id=gate.pk)
    if context.with_history:
        lifecycle.append(event)
        history.append(record)
    return Outcome(
        run=run, gate=gate, record=record, nodes=nodes, lifecycle=lifecycle, history=history
    )


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


def _requeue(change: _Change, cause: Cause, decision: str, detail: str) -> None:
    """Approve and rework: the run goes back to `queued` (stop and pause fields cleared)."""
    run = change.run
    state.run_move(run, cause, now=change.now)
    run.detail = detail
    run.resume_reason = f"gate `{change.gate.node_id}` decision: {decision}"


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
    _requeue(change, Cause.GATE_APPROVE, "approve", f"gate `{node_id}` approved")


def _apply_rework(change: _Change, record: GateDecision, decided_by: dict) -> None:
    """Reset the rework targets' (else the gate's upstream nodes') descendant subtree and the
    gate: outputs and attempts cleared, nodes pending. The engine reopens the gate as a new
    opening (next round) when the subtree reaches it again."""
    gate = change.gate
    spec = RunSpec.from_snapshot(change.run.automation_snapshot)
    roots = [*(gate.rework_targets or gate.upstream_node_ids), gate.node_id]
    reset = sorted(descendants(spec.nodes.values(), roots) & set(spec.order))
    touched, _ = state.reset_nodes(change.nodes, reset, keep_attempts=False)
    change.touched.update(touched)
    if change.reason:  # the nodes that run again get the reviewer's words
        entry = {
            "gate_id": gate.pk,
            "gate_node_id": gate.node_id,
            "round": gate.round,
            "reason": change.reason,
            "decided_by": decided_by,
        }
        for node_id in touched:
            if node_id != gate.node_id:
                node = change.nodes[node_id]
                node.feedback = [*(node.feedback or []), entry]
    change.run.last_failure = None
    _requeue(
        change, Cause.GATE_REWORK, "rework", f"gate `{gate.node_id}` sent work back for rework"
    )
    change.metadata["reset_nodes"] = reset
    change.audit["resetNodes"] = reset


def _apply_cancel(change: _Change, record: GateDecision, decided_by: dict) -> None:
    """The run is cancelled (`stop_kind = cancelled`, `run_cancelled`); the gate node is not
    completed, so nothing downstream ever runs."""
    run = change.run
    stop_reason = change.reason or f"gate `{change.gate.node_id}` cancelled the run"
    state.cancel(
        run, Cause.GATE_CANCEL, reason=stop_reason, stop_kind=StopKind.CANCELLED, now=change.now
    )
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
# A request has no work before its gate to redo: its rework ends the run, and the requester
# revises and asks again with a new request (the reason tells it what to change).
APPLY_TO_REQUEST = {**APPLY, "rework": _apply_cancel}
