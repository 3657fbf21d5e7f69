"""The gate decision service (`approvals.decisions.gate_decide`): the reference notes §9 items
1-31 ported with SPEC's corrections, the policy of SPEC §6.4, superseded openings and a
50-thread race on PostgreSQL.

Runs reach their gate through the engine itself (`engine.run_advance` on a run whose upstream
nodes are completed), so every Gate row is one the engine opened. Items 15 and 24-26 (pending
list, reminders, escalation, stale marking) belong to the pending-approvals and expiry modules;
items 11-12 (a run awaiting approval whose gate was lost) cannot happen here, because a gate
opens in the transaction that parks the run: a hand-made run in that state answers 409
`AUTOMATION_V2_RUN_GATE_MISSING`.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from approvals import decisions
from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations import engine
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus, StopKind
from automations.runs import control, repair
from automations.services import automation_delete, grant_add
from governance.actors import Actor
from governance.errors import Conflict, Forbidden, InvalidRequest, NotFound
from governance.models import AuditEvent, Role
from governance.services import member_add
from tests.factories import (
    GOVERNED,
    actor_for,
    agent_node,
    approval_node,
    awaiting,
    basic,
    complete,
    fresh,
    make_run,
    open_gate,
    output,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

C, P = NodeState.COMPLETED, NodeState.PENDING
DENIED = "automation.governance.gate_decision_denied"
DECIDED = "automation.governance.gate_decided"


BRANCHED = [
    agent_node("research"),
    agent_node("analysis", "research"),
    agent_node("draft", "research"),
    approval_node("publish", "analysis", "draft"),
]


@pytest.fixture
def op(operator) -> Actor:
    return actor_for(operator)


@pytest.fixture
def rev(reviewer) -> Actor:
    return actor_for(reviewer)


def states(run) -> dict[str, tuple[str, int, object]]:
    return {n.node_id: (n.state, n.attempts, n.output) for n in RunNode.objects.filter(run=run)}


def history(run) -> list[tuple[str, int, bool]]:
    return [
        (d.decision, d.gate.round, d.settles)
        for d in GateDecision.objects.filter(run=run).select_related("gate")
    ]


def audits(run, event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type, payload__runID=run.run_id))


def refused(exc_type, code, **kwargs):
    with pytest.raises(exc_type) as info:
        gate_decide(**kwargs)
    assert info.value.code == code, info.value.body()
    return info.value


def assert_untouched(run, gate):
    run = fresh(run)
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.OPEN
    assert not GateDecision.objects.filter(run=run, settles=True).exists()


# --- effects (items 1, 2, 10, 16, 17, 20) ------------------------------------------------------


def test_approve_completes_the_gate_node_and_queues_the_run(
    op, rev, no_broker, django_capture_on_commit_callbacks
):
    run = awaiting(op)
    gate = open_gate(run)
    assert (gate.round, gate.upstream_node_ids) == (1, ["review"])
    with django_capture_on_commit_callbacks(execute=True):
        outcome = gate_decide(actor=rev, run=run, decision="approve", reason=" LGTM ")
    run = fresh(run)
    assert (run.status, run.detail) == (RunStatus.QUEUED, "gate `approval` approved")
    assert run.resume_reason == "gate `approval` decision: approve"
    out = states(run)["approval"][2]
    assert out["contract_kind"] == "approval_gate" and out["status"] == "completed"
    assert out["content"]["decision"] == "approve" and out["content"]["reason"] == "LGTM"
    assert out["content"]["decided_by"] == {
        "kind": "human",
        "actor_id": "rita-reviewer",
        "source": "api",
    }
    assert out["content"]["reviewed_digest"] == gate.reviewed_digest != ""
    assert states(run)["approval"][0] == C
    assert states(run)["publish"][0] == P  # runs next, through the engine
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.DECIDED
    record = outcome.record
    assert (record.decision, record.reason, record.decider_kind) == ("approve", "LGTM", "human")
    assert record.reviewed_digest == gate.reviewed_digest
    assert history(run) == [("approve", 1, True)]
    event = LifecycleEvent.objects.get(run=run, event="approval_gate_decided")
    assert event.metadata["gate_id"] == gate.pk and event.metadata["decision"] == "approve"
    (audit,) = audits(run, DECIDED)
    assert audit.payload["decision"] == "approve" and audit.payload["gateID"] == gate.pk
    assert audit.actor_id == "rita-reviewer"
    assert no_broker == [run.run_id]


def test_gate_ids_bind_the_opening(op):
    """Item 20: the approval request id is the gate id, the transition id derives from it."""
    run = awaiting(op)
    gate = open_gate(run)
    assert gate.transition_id == f"{gate.pk}:decision"
    assert gate.expires_at > gate.requested_at  # item 31: finite, fail-closed default


def test_rework_clears_the_subtree_and_requeues(op, rev):
    """Item 1: rework targets [draft] → draft, review, approval (and publish) reset."""
    run = awaiting(op, attempts=2)
    gate_decide(actor=rev, run=run, decision="rework")
    run = fresh(run)
    assert run.status == RunStatus.QUEUED
    assert run.detail == "gate `approval` sent work back for rework"
    assert all(state == (P, 0, None) for state in states(run).values())
    assert history(run) == [("rework", 1, True)]
    (audit,) = audits(run, DECIDED)
    assert audit.payload["resetNodes"] == ["approval", "draft", "publish", "review"]


def test_rework_on_a_branch_preserves_the_completed_sibling(op, rev):
    """Item 2: rework of `publish` with targets [draft] keeps research and analysis."""
    run = awaiting(
        op,
        BRANCHED,
        automation_id="branched",
        done=("research", "analysis", "draft"),
        attempts=2,
    )
    gate_decide(actor=rev, run=run, decision="rework", reason="redo only the draft branch")
    got = states(fresh(run))
    assert got["research"][0] == got["analysis"][0] == C
    assert got["analysis"][2] is not None and got["analysis"][1] == 2
    assert got["draft"] == got["publish"] == (P, 0, None)
    assert GateDecision.objects.get(run=run).reason == "redo only the draft branch"


def test_rework_without_targets_resets_the_upstream_nodes(op, rev):
    run = awaiting(op, basic(rework_targets=()), automation_id="no-targets")
    gate_decide(actor=rev, run=run, decision="rework")
    got = states(fresh(run))
    assert got["draft"][0] == C  # upstream of the gate is `review` only
    assert got["review"] == got["approval"] == (P, 0, None)


def test_cancel_never_runs_the_downstream(op, rev, no_broker):
    """Item 17."""
    run = awaiting(op)
    gate_decide(actor=rev, run=run, decision="cancel", reason="scope drifted")
    run = fresh(run)
    assert (run.status, run.stop_kind) == (RunStatus.CANCELLED, StopKind.CANCELLED)
    assert run.stop_reason == run.detail == "scope drifted"
    assert run.finished_at is not None
    assert states(run)["approval"][0] == P and states(run)["publish"][0] == P
    assert history(run) == [("cancel", 1, True)]
    event = LifecycleEvent.objects.get(run=run, event="run_cancelled")
    assert event.stop_kind == StopKind.CANCELLED
    assert no_broker == []


def test_decisions_are_trimmed_and_case_insensitive(op, rev):
    run = awaiting(op)
    assert gate_decide(actor=rev, run=run, decision="  Approve ").decision == "approve"


# --- refusals in order ------------------------------------------------------------------------


def test_agent_is_refused_and_audited(op, agent):
    """Item 3: only humans decide; the refusal is audited."""
    run = awaiting(op)
    gate = open_gate(run)
    bot = actor_for(agent)
    refused(Forbidden, "AUTOMATION_V2_GATE_REQUIRES_HUMAN", actor=bot, run=run, decision="approve")
    assert_untouched(run, gate)
    (audit,) = audits(run, DENIED)
    assert audit.payload["code"] == "AUTOMATION_V2_GATE_REQUIRES_HUMAN"
    assert audit.actor_kind == "agent"


def test_viewer_lacks_the_review_permission(op, viewer):
    run = awaiting(op)
    refused(
        Forbidden,
        "AUTOMATION_V2_ACCESS_DENIED",
        actor=actor_for(viewer),
        run=run,
        decision="approve",
    )
    (audit,) = audits(run, DENIED)
    assert audit.payload["code"] == "AUTOMATION_V2_ACCESS_DENIED"


def test_deleted_automation_is_refused_under_the_lock(op, rev):
    """A caller holding the run as read before its automation was soft-deleted (an approval
    page or chat card opened earlier) is refused: the automation is judged on the row read
    under the decision's lock. 404 as for any deleted automation, audited, nothing applied
    (the delete itself cancelled the run and superseded its gate)."""
    run = awaiting(op)
    gate = open_gate(run)
    automation_delete(actor=op, automation=run.automation)
    assert run.automation.deleted_at is None  # the caller's copy still looks live
    refused(NotFound, "AUTOMATION_V2_NOT_FOUND", actor=rev, run=run, decision="approve")
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.SUPERSEDED
    assert not GateDecision.objects.filter(run=run, settles=True).exists()
    (audit,) = audits(run, DENIED)
    assert audit.payload["code"] == "AUTOMATION_V2_NOT_FOUND"


def test_settled_gate_answers_409_with_the_winner(op, rev, admin):
    """Items 13, 19: a second decision on a decided gate → 409 naming the first."""
    run = awaiting(op)
    gate_decide(actor=rev, run=run, decision="approve", reason="looks good")
    error = refused(
        Conflict,
        "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL",
        actor=actor_for(admin),
        run=run,
        decision="cancel",
    )
    body = error.body()
    assert body["currentStatus"] == "queued"
    winner = body["winningDecision"]
    assert (winner["decision"], winner["node_id"], winner["reason"]) == (
        "approve",
        "approval",
        "looks good",
    )
    assert winner["decided_at_ms"] > 0
    assert history(run) == [("approve", 1, True)]
    assert fresh(run).status == RunStatus.QUEUED
    assert [a.payload["code"] for a in audits(run, DENIED)] == [
        "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
    ]


def test_winning_decision_is_of_the_same_gate_node(op, rev):
    """SPEC §10.9: the winner of another gate node is never reported."""
    flow = [
        agent_node("draft"),
        approval_node("first", "draft", rework_targets=()),
        approval_node("second", "first", rework_targets=()),
    ]
    run = awaiting(op, flow, automation_id="two-gates", done=("draft",))
    gate_decide(actor=rev, run=run, decision="approve")
    engine.run_advance(run.run_id)
    second = open_gate(run)
    assert second.node_id == "second"
    gate_decide(actor=rev, run=run, decision="cancel")
    error = refused(
        Conflict,
        "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL",
        actor=rev,
        run=run,
        decision="approve",
        approval_request_id=Gate.objects.get(run=run, node_id="first").pk,
    )
    assert error.body()["winningDecision"]["node_id"] == "first"
    assert error.body()["winningDecision"]["decision"] == "approve"


def test_stale_decision_after_cancel(op, rev):
    """Item 30: the run was cancelled (its gate superseded) → 409, nothing recorded."""
    run = awaiting(op)
    gate = open_gate(run)
    control.run_cancel(actor=op, run=run)
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.SUPERSEDED
    error = refused(
        Conflict, "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL", actor=rev, run=run, decision="approve"
    )
    assert error.body()["currentStatus"] == "cancelled"
    assert "winningDecision" not in error.body()
    assert history(run) == []


@pytest.mark.parametrize("decision", ["", "Reject", "expired", "guard_denied", 5])
def test_invalid_decision_is_400(op, rev, decision):
    run = awaiting(op)
    refused(
        InvalidRequest,
        "AUTOMATION_V2_GATE_INVALID_DECISION",
        actor=rev,
        run=run,
        decision=decision,
    )
    assert audits(run, DENIED)[0].payload["code"] == "AUTOMATION_V2_GATE_INVALID_DECISION"


def test_decision_not_offered_by_the_gate_is_400(op, rev):
    """SPEC §10.3: a gate offering approve/cancel refuses rework."""
    run = awaiting(
        op, basic(decisions=["approve", "cancel"], rework_targets=()), automation_id="ac"
    )
    gate = open_gate(run)
    refused(
        InvalidRequest,
        "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED",
        actor=rev,
        run=run,
        decision="rework",
    )
    assert_untouched(run, gate)
    assert audits(run, DENIED)[0].payload["code"] == "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED"


@pytest.mark.parametrize("field", ["approval_request_id", "transition_id"])
def test_transition_guard_denial_does_not_consume_the_gate(op, rev, field):
    """Items 5, 21: a mismatching id is recorded as `guard_denied`, settles nothing, is
    audited; the right ids then decide the gate."""
    run = awaiting(op)
    gate = open_gate(run)
    error = refused(
        Conflict,
        "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED",
        actor=rev,
        run=run,
        decision="approve",
        **{field: "gate-of-another-run"},
    )
    guard = error.body()["transitionGuard"]
    assert guard["expected_approval_request_id"] == gate.pk
    assert guard["reason_code"] == f"{field}_mismatch"
    assert_untouched(run, gate)
    assert history(run) == [("guard_denied", 1, False)]
    event = LifecycleEvent.objects.get(run=run, event="approval_gate_transition_guard_denied")
    assert event.metadata["gate_id"] == gate.pk
    assert audits(run, DENIED)[0].payload["code"] == "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
    gate_decide(
        actor=rev,
        run=run,
        decision="approve",
        approval_request_id=gate.pk,
        transition_id=gate.transition_id,
    )
    assert fresh(run).status == RunStatus.QUEUED
    assert history(run) == [("guard_denied", 1, False), ("approve", 1, True)]


def test_expired_gate_refuses_a_decision(op, rev):
    """Items 22-23 (the decision side): past `expires_at` → 409 GATE_EXPIRED, audited."""
    run = awaiting(op)
    gate = open_gate(run)
    Gate.objects.filter(pk=gate.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    error = refused(Conflict, "AUTOMATION_V2_GATE_EXPIRED", actor=rev, run=run, decision="approve")
    assert error.body()["nodeID"] == "approval"
    assert_untouched(run, gate)
    assert audits(run, DENIED)[0].payload["code"] == "AUTOMATION_V2_GATE_EXPIRED"


def test_late_decision_after_the_sweep_cancelled_the_run(op, rev):
    """SPEC §14: even when the run was already cancelled by the expiry, 409 GATE_EXPIRED."""
    run = awaiting(op)
    gate = open_gate(run)
    Gate.objects.filter(pk=gate.pk).update(
        status=GateStatus.EXPIRED, expires_at=timezone.now() - timedelta(seconds=1)
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    for ids in ({}, {"approval_request_id": gate.pk}):
        refused(
            Conflict, "AUTOMATION_V2_GATE_EXPIRED", actor=rev, run=run, decision="approve", **ids
        )


def test_gate_expired_by_the_sweep_while_the_run_still_waits(op, rev):
    run = awaiting(op)
    gate = open_gate(run)
    Gate.objects.filter(pk=gate.pk).update(status=GateStatus.EXPIRED)
    refused(Conflict, "AUTOMATION_V2_GATE_EXPIRED", actor=rev, run=run, decision="approve")


def test_missing_gate_is_409(op, rev):
    run = make_run(op, basic(), status=RunStatus.AWAITING_APPROVAL)
    refused(Conflict, "AUTOMATION_V2_RUN_GATE_MISSING", actor=rev, run=run, decision="approve")


# --- self-approval and reviewer authority (items 4, 6-9; SPEC §6.4) -----------------------------


def test_requester_may_not_approve_a_consequential_gate(op):
    """Item 4: the run's requester (here also the owner) approves → 403, audited."""
    run = awaiting(op, basic(policy={"risk_tier": "external_send"}), automation_id="send")
    gate = open_gate(run)
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN",
        actor=op,
        run=run,
        decision="approve",
    )
    assert_untouched(run, gate)
    (audit,) = audits(run, DENIED)
    assert audit.payload["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert audit.payload["automationID"] == "send"


def test_requester_through_a_chat_surface_is_still_the_requester(op):
    """Item 6, SPEC §6.4: identity is the Flowgate user, whatever surface they click in."""
    run = awaiting(op, basic(policy={"risk_tier": "external_send"}), automation_id="send")
    in_slack = Actor(**{**op.__dict__, "source": "slack"})
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN",
        actor=in_slack,
        run=run,
        decision="approve",
        source="slack",
    )


@pytest.mark.parametrize("decision", ["rework", "cancel"])
def test_requester_may_rework_or_cancel(op, decision):
    run = awaiting(op, basic(policy={"risk_tier": "external_send"}), automation_id="send")
    assert gate_decide(actor=op, run=run, decision=decision).decision == decision


def test_requester_may_approve_an_ordinary_gate(op):
    run = awaiting(op)
    assert gate_decide(actor=op, run=run, decision="approve").decision == "approve"


def test_requester_falls_back_to_the_automation_creator(op, admin):
    """A run without a requester (e.g. a trigger): the creator may not approve."""
    run = awaiting(
        op, basic(policy={"reviewer_eligibility": "any_human_reviewer"}), automation_id="x"
    )
    Run.objects.filter(pk=run.pk).update(requested_by=None)
    run = fresh(run)
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN",
        actor=op,
        run=run,
        decision="approve",
    )
    assert gate_decide(actor=actor_for(admin), run=run, decision="approve")


def test_elevated_gate_refuses_a_plain_reviewer(op, rev):
    """Item 7 (SPEC: DENIED for an identified reviewer without authority)."""
    run = awaiting(
        op, basic(policy={"reviewer_eligibility": "elevated_reviewer"}), automation_id="e"
    )
    gate = open_gate(run)
    for decision in ("approve", "rework"):
        refused(
            Forbidden,
            "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
            actor=rev,
            run=run,
            decision=decision,
        )
    assert_untouched(run, gate)
    assert len(audits(run, DENIED)) == 2


def test_elevated_gate_allows_a_granted_reviewer(op, reviewer, admin):
    """Item 9: `review_elevated` granted on the automation (by a workspace admin)."""
    run = awaiting(
        op, basic(policy={"reviewer_eligibility": "elevated_reviewer"}), automation_id="e"
    )
    grant_add(
        actor=actor_for(admin),
        automation=run.automation,
        permission="review_elevated",
        username="rita-reviewer",
    )
    assert gate_decide(actor=actor_for(reviewer), run=run, decision="approve")


def test_elevated_gate_allows_a_workspace_admin(op, admin):
    run = awaiting(
        op, basic(policy={"reviewer_eligibility": "elevated_reviewer"}), automation_id="e"
    )
    assert gate_decide(actor=actor_for(admin), run=run, decision="approve")


def test_chat_decider_is_judged_like_an_api_decider(op, rev):
    """Item 8 corrected (SPEC §6.4, §10.5): a chat click does not bypass reviewer authority."""
    run = awaiting(
        op, basic(policy={"reviewer_eligibility": "elevated_reviewer"}), automation_id="e"
    )
    in_slack = Actor(**{**rev.__dict__, "source": "slack"})
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
        actor=in_slack,
        run=run,
        decision="approve",
        source="slack",
    )


def clear(member, *classes):
    member_add(
        workspace=member.workspace,
        username=member.user.username,
        role=Role.REVIEWER if "rita" in member.user.username else Role.ADMIN,
        clearances=list(classes),
    )


def test_data_classes_need_a_clearance_for_every_class(op, reviewer):
    """A reviewer cleared for one of two classes is refused; for both, allowed."""
    policy = {"data_classes": ["customer_data", "financial_record"]}
    run = awaiting(op, basic(policy=policy), automation_id="classes")
    clear(reviewer, "customer_data")
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
        actor=actor_for(reviewer),
        run=run,
        decision="approve",
    )
    clear(reviewer, "financial_record")
    assert gate_decide(actor=actor_for(reviewer), run=run, decision="approve")


def test_admin_needs_clearances_too(op, admin):
    run = awaiting(op, basic(policy={"data_classes": ["internal"]}), automation_id="internal")
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
        actor=actor_for(admin),
        run=run,
        decision="cancel",
    )
    clear(admin, "internal")
    assert gate_decide(actor=actor_for(admin), run=run, decision="cancel")


def test_governed_gate_with_full_authority(op, admin):
    """Item 9 with the reference's governed gate: elevated + financial_record."""
    run = awaiting(op, basic(policy=GOVERNED), automation_id="governed")
    clear(admin, "financial_record")
    assert gate_decide(actor=actor_for(admin), run=run, decision="approve")
    assert fresh(run).status == RunStatus.QUEUED


def test_unlinked_caller_cannot_have_authority_verified(op, workspace):
    from approvals.policy import AUTHORITY_REQUIRED, GatePolicy, authority_refusal

    nobody = Actor(kind="human", workspace=workspace, user=None, source="slack")
    policy = GatePolicy.of({"reviewer_eligibility": "elevated_reviewer"})
    assert authority_refusal(
        actor=nobody, policy=policy, held=frozenset(), workspace=workspace
    ) == (AUTHORITY_REQUIRED)


# --- openings: rework rounds, superseding, restart safety (items 18, 29; SPEC §10.1) -----------


def test_rework_reopens_the_gate_as_a_new_round(op, rev):
    """Item 18: rework → the subtree re-completes → the engine opens round 2 → approve."""
    run = awaiting(op)
    first = open_gate(run)
    gate_decide(actor=rev, run=run, decision="rework", approval_request_id=first.pk)
    complete(run, "draft", "review")
    engine.run_advance(run.run_id)
    second = open_gate(run)
    assert (second.round, fresh(run).status) == (2, RunStatus.AWAITING_APPROVAL)
    # The first opening's ids never decide the second.
    refused(
        Conflict,
        "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED",
        actor=rev,
        run=run,
        decision="approve",
        approval_request_id=first.pk,
    )
    gate_decide(actor=rev, run=run, decision="approve", approval_request_id=second.pk)
    assert history(run) == [("rework", 1, True), ("guard_denied", 2, False), ("approve", 2, True)]
    assert states(fresh(run))["approval"][0] == C


def test_repair_upstream_supersedes_the_opening(op, rev):
    """A repair after the gate opened makes that opening stale: it cannot be approved; the
    next opening (on the new outputs, with a new digest) can."""
    run = awaiting(op)
    first = open_gate(run)
    repair.run_repair(actor=op, run=run, node_id="review", prompt="Review harder")
    assert Gate.objects.get(pk=first.pk).status == GateStatus.SUPERSEDED
    refused(
        Conflict,
        "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL",
        actor=rev,
        run=run,
        decision="approve",
        approval_request_id=first.pk,
    )
    RunNode.objects.filter(run=run, node_id="review").update(
        state=C, attempts=1, output=output(summary="reviewed again")
    )
    engine.run_advance(run.run_id)
    second = open_gate(run)
    assert second.round == 2 and second.reviewed_digest != first.reviewed_digest
    refused(
        Conflict,
        "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED",
        actor=rev,
        run=run,
        decision="approve",
        approval_request_id=first.pk,
    )
    outcome = gate_decide(actor=rev, run=run, decision="approve", approval_request_id=second.pk)
    assert outcome.record.reviewed_digest == second.reviewed_digest
    assert not GateDecision.objects.filter(gate=first, settles=True).exists()


def test_a_failure_while_applying_leaves_nothing_half_applied(op, rev, monkeypatch):
    """Item 29: the decision, its effect and its audit commit together or not at all."""
    run = awaiting(op)
    gate = open_gate(run)

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(decisions, "audit_record", broken)
    with pytest.raises(RuntimeError):
        gate_decide(actor=rev, run=run, decision="approve")
    assert_untouched(run, gate)
    assert states(run)["approval"][0] == P
    monkeypatch.undo()
    assert gate_decide(actor=rev, run=run, decision="approve")
    assert history(run) == [("approve", 1, True)]


def test_a_downstream_failure_after_approval_does_not_reopen_the_gate(op, rev):
    """Item 28: the failing node retries; the gate stays decided and is not asked again."""
    flow = basic()
    flow[3]["retry"] = {"max_attempts": 2, "backoff_s": 60}
    run = awaiting(op, flow, automation_id="retrying")
    gate_decide(actor=rev, run=run, decision="approve")
    engine.run_advance(run.run_id)
    publish = RunNode.objects.get(run=run, node_id="publish")
    assert publish.state == NodeState.RUNNING
    engine.node_result_accept(
        run.run_id,
        "publish",
        str(publish.attempt_token),
        output=None,
        failure={"reason": "provider down", "failure_kind": "provider_error"},
    )
    run = fresh(run)
    assert run.status == RunStatus.RUNNING
    assert states(run)["publish"][:2] == (P, 1)
    assert states(run)["approval"][0] == C
    assert Gate.objects.filter(run=run).count() == 1
    assert history(run) == [("approve", 1, True)]


# --- the race (items 14, 27) on PostgreSQL with real threads ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_decisions_one_winner(op, make_member):
    run = awaiting(op)
    gate = open_gate(run)
    deciders = [
        actor_for(make_member("acme/ops", f"reviewer-{i}", role=Role.REVIEWER)) for i in range(50)
    ]
    choices = ["approve", "rework", "cancel"]
    barrier = threading.Barrier(len(deciders))
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def decide(i: int, actor: Actor) -> None:
        try:
            barrier.wait()
            try:
                outcome = gate_decide(actor=actor, run=run, decision=choices[i % 3])
                result = ("applied", outcome.decision)
            except Conflict as exc:
                result = ("conflict", exc.body())
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(i, a)) for i, a in enumerate(deciders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [r[1] for r in results if r[0] == "applied"]
    conflicts = [r[1] for r in results if r[0] == "conflict"]
    assert len(applied) == 1 and len(conflicts) == 49, results
    winner = applied[0]
    for body in conflicts:
        assert body["code"] == "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
        assert body["winningDecision"]["decision"] == winner
        assert body["winningDecision"]["approval_request_id"] == gate.pk
    assert GateDecision.objects.filter(gate=gate).count() == 1
    assert len(audits(run, DECIDED)) == 1
    assert len(audits(run, DENIED)) == 49
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.DECIDED


def test_grants_and_clearances_through_groups_in_one_query(op, make_member):
    """The decision reads the review grant and the clearances, to the user or a group, in one
    query (`governance.policy.grants_held`), as guardian would: an inactive user holds none."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from governance.models import WorkspaceGroup

    member = make_member("acme/ops", "gina-grouped", role=Role.VIEWER)
    run = awaiting(op, basic(policy={"data_classes": ["financial_record", "regulated"]}))
    group = Group.objects.create(name="acme-gate-reviewers")
    WorkspaceGroup.objects.create(workspace=member.workspace, group=group)
    member.user.groups.add(group)
    assign_perm("automations.review_automation", group, run.automation)
    assign_perm("governance.review_financial_record", group, member.workspace)
    actor = actor_for(member)
    refused(
        Forbidden,
        "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED",
        actor=actor,
        run=run,
        decision="approve",
    )
    assign_perm("governance.review_regulated", member.user, member.workspace)
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])
    refused(
        Forbidden,
        "AUTOMATION_V2_ACCESS_DENIED",
        actor=actor_for(member),
        run=run,
        decision="approve",
    )
    member.user.is_active = True
    member.user.save(update_fields=["is_active"])
    assert gate_decide(actor=actor_for(member), run=run, decision="approve").decision == "approve"
