"""The gate sweep (`approvals.expiry`): cancel on expiry, reminders, escalation, idempotency,
and a human decision racing the sweep (SPEC §6.5, reference §4.6 and §9 items 24-26).

Runs reach their gate through the engine (`engine.run_advance` on a run whose upstream node is
completed), so every gate is one `approvals.services.gate_open` opened. Time moves by putting
`requested_at`, `last_reminded_at` or `expires_at` in the past.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from guardian.shortcuts import get_perms

from approvals import expiry, signals, tasks
from approvals.decisions import gate_decide
from approvals.models import Decision, Gate, GateDecision, GateStatus
from automations import engine, selectors
from automations.api.run_json import run_json
from automations.models import LifecycleEvent, NodeState, Run, RunNode, RunStatus, StopKind
from governance.errors import Forbidden
from governance.models import AuditEvent, Role
from tests.factories import actor_for, agent_node, complete, make_run, output

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

EXPIRED_AUDIT = "automation.governance.gate_expired"
ESCALATED_AUDIT = "automation.governance.gate_escalated"


@pytest.fixture
def notified():
    """The gate signals sent after commit (`approvals.signals`), in order."""
    calls: list[tuple] = []
    receivers = {
        signals.gate_reminded: lambda gate_id, **kw: calls.append(("reminder", gate_id)),
        signals.gate_escalated: lambda gate_id, **kw: calls.append(("escalated", gate_id)),
        signals.gate_closed: lambda gate_id, outcome, **kw: calls.append((outcome, gate_id)),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    yield calls
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def flow(expiry=None, **policy):
    gate = {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]}
    if expiry is not None:
        gate["expiry"] = expiry
    if policy:
        gate["policy"] = policy
    return [
        agent_node("draft"),
        {
            "node_id": "approval",
            "kind": "approval",
            "depends_on": ["draft"],
            "objective": "Approve the draft",
            "gate": gate,
        },
        agent_node("publish", "approval"),
    ]


def awaiting(actor, nodes=None, *, automation_id="expiring") -> tuple[Run, Gate]:
    """A run parked by the engine on its gate (draft completed)."""
    run = make_run(
        actor,
        nodes or flow(),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={"draft": (NodeState.COMPLETED, 1, output(summary="draft"))},
    )
    engine.run_advance(run.run_id)
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.AWAITING_APPROVAL
    return run, Gate.objects.get(run=run, status=GateStatus.OPEN)


def shift(gate: Gate, **fields) -> Gate:
    """Move the gate's clock fields (e.g. `expires_at=ago(1)`) and return it fresh."""
    Gate.objects.filter(pk=gate.pk).update(**fields)
    return Gate.objects.get(pk=gate.pk)


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def sweep(capture):
    with capture(execute=True):
        return expiry.sweep_gates()


def events(run, name) -> list[LifecycleEvent]:
    return list(LifecycleEvent.objects.filter(run=run, event=name).order_by("pk"))


def audits(run, event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type, payload__runID=run.run_id))


@pytest.fixture
def op(operator):
    return actor_for(operator)


# --- cancel ------------------------------------------------------------------------------------


def test_default_policy_is_finite_cancel(op):
    _run, gate = awaiting(op)
    assert gate.expiry_policy == {
        "expires_after_s": settings.FLOWGATE_GATE_DEFAULT_EXPIRY_S,
        "on_expiry": "cancel",
    }
    assert gate.expires_at == gate.requested_at + timedelta(
        seconds=settings.FLOWGATE_GATE_DEFAULT_EXPIRY_S
    )


def test_unexpired_gate_is_left_alone(op, django_capture_on_commit_callbacks, notified):
    run, _gate = awaiting(op)
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert notified == []


def test_expired_gate_cancels_the_run(op, django_capture_on_commit_callbacks, notified):
    """Item 24: on_expiry cancel → decision `expired`, run cancelled, `approval_gate_expired`."""
    run, gate = awaiting(op)
    gate = shift(gate, expires_at=ago(1))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.EXPIRED}

    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.CANCELLED
    assert run.stop_kind == StopKind.CANCELLED
    assert (
        run.stop_reason
        == run.detail
        == "approval gate `approval` expired before a decision was made"
    )
    assert run.finished_at is not None
    gate.refresh_from_db()
    assert (gate.status, gate.closed_at is not None) == (GateStatus.EXPIRED, True)
    (record,) = GateDecision.objects.filter(gate=gate)
    assert (record.decision, record.settles, record.source, record.decider_kind) == (
        Decision.EXPIRED,
        True,
        "system",
        "system",
    )
    assert record.decided_by is None
    assert RunNode.objects.get(run=run, node_id="publish").state == NodeState.PENDING

    rendered = run_json(selectors.runs_with_state(Run.objects.filter(pk=run.pk)).get())
    assert rendered["status"] == "cancelled" and rendered["stop_kind"] == "cancelled"
    assert rendered["checkpoint"]["awaiting_gate"] is None
    (entry,) = rendered["checkpoint"]["gate_history"]
    assert entry["decision"] == "expired" and entry["approval_request_id"] == gate.pk
    assert entry["decided_by"] == {"kind": "system", "actor_id": None, "source": "system"}
    names = [e["event"] for e in rendered["checkpoint"]["lifecycle_history"]]
    assert names[-2:] == ["approval_gate_expired", "run_cancelled"]

    (audit,) = audits(run, EXPIRED_AUDIT)
    assert audit.actor_kind == "system"
    assert audit.payload["gateID"] == gate.pk and audit.payload["onExpiry"] == "cancel"
    assert (audit.payload["fromStatus"], audit.payload["toStatus"]) == (
        "awaiting_approval",
        "cancelled",
    )
    assert notified == [("expired", gate.pk)]

    # Idempotent: a second sweep finds nothing and writes nothing.
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert GateDecision.objects.filter(gate=gate).count() == 1
    assert len(audits(run, EXPIRED_AUDIT)) == 1
    assert len(events(run, "run_cancelled")) == 1
    assert Run.objects.get(pk=run.pk).version == run.version


def test_sweeping_one_gate_twice_acts_once(op, django_capture_on_commit_callbacks):
    """Two sweeps that both picked the gate as a candidate: the second re-checks and skips."""
    _run, gate = awaiting(op)
    shift(gate, expires_at=ago(1))
    now = timezone.now()
    assert expiry.gate_sweep_one(gate.pk, now=now) == expiry.EXPIRED
    assert expiry.gate_sweep_one(gate.pk, now=now) is None
    assert GateDecision.objects.filter(gate=gate).count() == 1


def test_gate_of_a_run_no_longer_awaiting_is_not_a_candidate(op):
    run, gate = awaiting(op)
    shift(gate, expires_at=ago(1))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
    assert expiry.gate_candidates(timezone.now()) == []
    assert expiry.gate_sweep_one(gate.pk, now=timezone.now()) is None
    assert not GateDecision.objects.filter(gate=gate).exists()


# --- reminders ---------------------------------------------------------------------------------


REMIND = {"expires_after_s": 3600, "on_expiry": "remind", "remind_every_s": 600}


def test_reminders_every_interval_then_cancel_at_expiry(
    op, django_capture_on_commit_callbacks, notified
):
    """Item 25: reminders before expiry, at the right times; at expiry a remind gate fails
    closed like cancel."""
    run, gate = awaiting(op, flow(REMIND))
    assert sweep(django_capture_on_commit_callbacks) == {}  # not due yet

    gate = shift(gate, requested_at=ago(601))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.REMINDED}
    gate.refresh_from_db()
    assert gate.reminder_count == 1 and gate.last_reminded_at is not None
    assert sweep(django_capture_on_commit_callbacks) == {}  # next one 600 s after this one

    (first,) = events(run, "approval_gate_reminder_due")
    assert first.metadata["reminder"] == 1 and first.metadata["gate_id"] == gate.pk
    assert first.metadata["notification_key"] == f"automation_v2:{run.run_id}:approval:reminder:1"

    gate = shift(gate, last_reminded_at=ago(599))
    assert sweep(django_capture_on_commit_callbacks) == {}
    gate = shift(gate, last_reminded_at=ago(601))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.REMINDED}
    assert [e.metadata["reminder"] for e in events(run, "approval_gate_reminder_due")] == [1, 2]
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert notified == [("reminder", gate.pk), ("reminder", gate.pk)]

    gate = shift(gate, expires_at=ago(1), last_reminded_at=ago(601))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.EXPIRED}
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert len(events(run, "approval_gate_reminder_due")) == 2  # no reminder at expiry
    (audit,) = audits(run, EXPIRED_AUDIT)
    assert audit.payload["onExpiry"] == "remind"


def test_a_late_sweep_sends_one_reminder_not_a_burst(op, django_capture_on_commit_callbacks):
    _run, gate = awaiting(op, flow(REMIND))
    shift(gate, requested_at=ago(3000))  # five intervals missed
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.REMINDED}
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert Gate.objects.get(pk=gate.pk).reminder_count == 1


def test_reminder_never_due_after_expiry(op):
    """A reminder whose time falls after the expiry is not sent; the expiry handles the gate."""
    run, gate = awaiting(op, flow(REMIND))
    gate = shift(gate, requested_at=ago(601), expires_at=ago(1))
    assert expiry.gate_sweep_one(gate.pk, now=timezone.now()) == expiry.EXPIRED
    assert events(run, "approval_gate_reminder_due") == []


# --- escalation --------------------------------------------------------------------------------


ESCALATE = {
    "expires_after_s": 3600,
    "on_expiry": "escalate",
    "escalate_to": ["erin-escalation", "bot-agent", "oscar-outsider", "nobody-here"],
}


def test_escalation_extends_once_then_cancels(
    op, make_member, agent, outsider, django_capture_on_commit_callbacks, notified
):
    """Item 26: at expiry the gate is escalated once (the named human members recorded as its
    reviewers, one more full window); at the second expiry it fails closed."""
    erin = make_member("acme/ops", "erin-escalation", role=Role.VIEWER)
    run, gate = awaiting(op, flow(ESCALATE))
    assert "review_automation" not in get_perms(erin.user, run.automation)

    gate = shift(gate, expires_at=ago(1))
    before = timezone.now()
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.ESCALATED}
    gate.refresh_from_db()
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.AWAITING_APPROVAL and gate.status == GateStatus.OPEN
    assert gate.escalated_to == ["erin-escalation"]  # not the agent, outsider or unknown name
    assert gate.escalated_at is not None
    window = timedelta(seconds=3600)
    assert before + window <= gate.expires_at <= timezone.now() + window
    assert "review_automation" not in get_perms(erin.user, run.automation)  # nothing granted

    (event,) = events(run, "approval_gate_escalated")
    assert event.metadata["escalated_to"] == ["erin-escalation"]
    assert event.metadata["not_escalated"] == ["bot-agent", "nobody-here", "oscar-outsider"]
    assert not AuditEvent.objects.filter(event_type="automation.grant.added").exists()
    (escalated,) = audits(run, ESCALATED_AUDIT)
    assert escalated.actor_kind == "system"
    assert escalated.payload["escalatedTo"] == ["erin-escalation"]
    assert notified == [("escalated", gate.pk)]
    assert Gate.objects.get(pk=gate.pk).escalated_to == ["erin-escalation"]  # the card names them
    assert not GateDecision.objects.filter(gate=gate).exists()

    # Nothing more until the extended window ends ...
    assert sweep(django_capture_on_commit_callbacks) == {}
    # ... then it fails closed: cancelled, not escalated again.
    gate = shift(gate, expires_at=ago(1))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.EXPIRED}
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert len(events(run, "approval_gate_escalated")) == 1
    (audit,) = audits(run, EXPIRED_AUDIT)
    assert audit.payload["onExpiry"] == "escalate"
    assert audit.payload["escalatedTo"] == ["erin-escalation"]


def test_escalation_authorises_its_recipients_for_that_opening_only(
    op, make_member, django_capture_on_commit_callbacks
):
    """An escalated viewer may decide the escalated opening (and sees it in the pending list),
    but gains nothing on the automation: not another run's gate, not the next round."""
    erin = make_member("acme/ops", "erin-escalation", role=Role.VIEWER)
    run, gate = awaiting(op, flow(ESCALATE))
    other, other_gate = awaiting(op, flow(ESCALATE))
    shift(gate, expires_at=ago(1))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.ESCALATED}
    as_erin = actor_for(erin)

    pending = erin.client().get("/api/approvals/pending").json()["approvals"]
    assert [p["approval_request_id"] for p in pending] == [gate.pk]
    with pytest.raises(Forbidden) as refused:
        gate_decide(actor=as_erin, run=other, decision="approve")
    assert refused.value.code == "AUTOMATION_V2_ACCESS_DENIED"

    gate_decide(actor=as_erin, run=run, decision="rework", reason="needs more")
    complete(run, "draft")
    engine.run_advance(run.run_id)
    second = Gate.objects.get(run=run, status=GateStatus.OPEN)
    assert second.round == 2 and second.escalated_to == []
    with pytest.raises(Forbidden):
        gate_decide(actor=as_erin, run=run, decision="approve")
    assert erin.client().get("/api/approvals/pending").json()["approvals"] == []
    assert other_gate.status == GateStatus.OPEN


def test_escalation_without_anyone_to_escalate_to_cancels(op, django_capture_on_commit_callbacks):
    """No `escalate_to` name is a human member of the workspace: fail closed right away."""
    run, gate = awaiting(op, flow(ESCALATE))
    shift(gate, expires_at=ago(1))
    assert sweep(django_capture_on_commit_callbacks) == {gate.pk: expiry.EXPIRED}
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert events(run, "approval_gate_escalated") == []


# --- racing a human decision -------------------------------------------------------------------


def test_a_settling_decision_already_inserted_wins(
    op, reviewer, django_capture_on_commit_callbacks
):
    """A human decision inserted without the run lock (simulated): the constraint refuses the
    sweep's `expired`, which rolls back and leaves everything as it was."""
    run, gate = awaiting(op)
    GateDecision.objects.create(
        gate=gate,
        run=run,
        node_id=gate.node_id,
        decision=Decision.APPROVE,
        decided_by=reviewer.user,
        decider_kind="human",
        source="api",
    )
    shift(gate, expires_at=ago(1))
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert list(GateDecision.objects.filter(gate=gate).values_list("decision", flat=True)) == [
        "approve"
    ]
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.OPEN
    assert audits(run, EXPIRED_AUDIT) == []


def _race(
    op_actor, rev_actor, automation_id: str, sweep_delay: float
) -> tuple[Run, Gate, dict[str, object]]:
    """One reviewer's approve and one sweep (clock past the expiry) started together; the sweep
    waits `sweep_delay` s after the barrier, so both orders are exercised."""
    from approvals.decisions import gate_decide
    from governance.errors import Conflict

    run, gate = awaiting(op_actor, automation_id=automation_id)
    sweep_now = gate.expires_at + timedelta(seconds=1)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide() -> None:
        try:
            barrier.wait()
            try:
                gate_decide(actor=rev_actor, run=run, decision="approve")
                outcomes["human"] = "applied"
            except Conflict as exc:
                outcomes["human"] = exc.code
        finally:
            connection.close()

    def sweeper() -> None:
        try:
            barrier.wait()
            time.sleep(sweep_delay)
            outcomes["sweep"] = expiry.gate_sweep_one(gate.pk, now=sweep_now)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide), threading.Thread(target=sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run.objects.get(pk=run.pk), gate, outcomes


@pytest.mark.django_db(transaction=True)
def test_human_decision_and_sweep_race_one_settles(op, reviewer):
    """Real threads on PostgreSQL: a reviewer approves while the sweep expires the same gate.
    Exactly one settling decision, and the run and the loser agree with it. Without a delay the
    sweep usually wins (the decision service checks more before it locks); with one, the human."""
    rev = actor_for(reviewer)
    for i, delay in enumerate([0, 0, 0.005, 0.02, 0.3, 0.3]):
        run, gate, outcomes = _race(op, rev, f"race-{i}", delay)
        (settling,) = GateDecision.objects.filter(gate=gate, settles=True)
        if settling.decision == Decision.EXPIRED:
            assert outcomes["sweep"] == expiry.EXPIRED
            # SPEC §14: a decision on an opening that expired is a late decision.
            assert outcomes["human"] == "AUTOMATION_V2_GATE_EXPIRED", outcomes
            assert run.status == RunStatus.CANCELLED
        else:
            assert outcomes == {"human": "applied", "sweep": None}
            assert run.status == RunStatus.QUEUED


# --- the beat task -----------------------------------------------------------------------------


def test_beat_runs_the_gate_sweep(op, django_capture_on_commit_callbacks):
    schedule = settings.CELERY_BEAT_SCHEDULE["sweep-gates"]
    assert schedule["task"] == "approvals.sweep_gates"
    assert schedule["schedule"] == float(settings.FLOWGATE_SWEEP_INTERVAL_S)
    _run, gate = awaiting(op)
    shift(gate, expires_at=ago(1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_gates.apply()
    assert Gate.objects.get(pk=gate.pk).status == GateStatus.EXPIRED
