"""The two-person rule (`policy.quorum`, `approvals.quorum`): M distinct approvers, group
requirements, a veto by rework or cancel, one approval per person per opening, the progress
shown in the run JSON and the pending list, and 30 threads racing for the last approval.

Runs reach their gate through the engine (`awaiting`), so every gate is one the engine opened.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations import engine
from automations.models import LifecycleEvent, Run, RunNode, RunStatus
from governance.errors import Conflict, Forbidden
from governance.models import AuditEvent, Role
from tests.factories import (
    AGENTS,
    actor_for,
    add_to_group,
    awaiting,
    basic,
    complete,
    fresh,
    open_gate,
)

pytestmark = [pytest.mark.django_db]

RECORDED = "automation.governance.gate_approval_recorded"
DECIDED = "automation.governance.gate_decided"
URL = "/api/automations/v2/runs"
# Consequential (the requester may not approve), two distinct approvers.
TWO = {"risk_tier": "external_send", "quorum": {"required_approvals": 2}}
FINANCE = {
    "risk_tier": "external_send",
    "quorum": {"required_approvals": 2, "groups": [{"group": "finance", "approvals": 1}]},
}


@pytest.fixture(autouse=True)
def broker_for_the_worker_only(request):
    if "celery_worker_factory" not in request.fixturenames:
        request.getfixturevalue("no_broker")


@pytest.fixture
def reviewers(make_member):
    return [make_member("acme/ops", f"rev-{i}", role=Role.REVIEWER) for i in range(3)]


def approve(member, run, **kwargs):
    return gate_decide(actor=actor_for(member), run=run, decision="approve", **kwargs)


def audits(run, event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type, payload__runID=run.run_id))


def test_two_of_n_where_the_requester_cannot_count(operator, reviewers):
    run = awaiting(actor_for(operator), basic(policy=TWO))
    gate = open_gate(run)
    assert gate.quorum["summary"] == "0 of 2 approvals"
    with pytest.raises(Forbidden) as refused:
        approve(operator, run)  # the requester and owner: separation of duties
    assert refused.value.code == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"

    first = approve(reviewers[0], run)
    assert not first.settled
    assert fresh(run).status == RunStatus.AWAITING_APPROVAL
    gate.refresh_from_db()
    assert gate.status == GateStatus.OPEN
    assert gate.quorum["summary"] == "1 of 2 approvals"
    assert [a["approver"] for a in gate.quorum["approved_by"]] == ["rev-0"]
    assert [e.payload["quorum"]["approvals"] for e in audits(run, RECORDED)] == [1]
    assert not audits(run, DECIDED)

    second = approve(reviewers[1], run)
    assert second.settled and second.decision == "approve"
    run = fresh(run)
    assert run.status == RunStatus.QUEUED
    gate.refresh_from_db()
    assert (gate.status, gate.quorum["summary"]) == (GateStatus.DECIDED, "2 of 2 approvals")
    decided = audits(run, DECIDED)
    assert len(decided) == 1 and decided[0].payload["quorum"]["met"] is True
    approver_of = RunNode.objects.get(run=run, node_id="approval").output["content"]["decided_by"]
    assert approver_of["actor_id"] == "rev-1"
    rows = GateDecision.objects.filter(gate=gate).order_by("decided_at", "id")
    assert [(r.decided_by.username, r.settles) for r in rows] == [
        ("rev-0", False),
        ("rev-1", True),
    ]


def test_the_same_person_approving_twice_is_409_and_counted_once(operator, reviewers):
    run = awaiting(actor_for(operator), basic(policy=TWO))
    approve(reviewers[0], run)
    with pytest.raises(Conflict) as twice:
        approve(reviewers[0], run)
    assert twice.value.code == "AUTOMATION_V2_GATE_ALREADY_APPROVED"
    assert twice.value.body()["quorum"]["summary"] == "1 of 2 approvals"
    gate = open_gate(run)
    assert gate.quorum["approvals"] == 1
    assert GateDecision.objects.filter(gate=gate, decision="approve").count() == 1
    denied = AuditEvent.objects.filter(event_type="automation.governance.gate_decision_denied")
    assert [e.payload["code"] for e in denied] == ["AUTOMATION_V2_GATE_ALREADY_APPROVED"]

    # Over the API: a clear 409, and the pending list says who approved.
    response = (
        reviewers[0]
        .client()
        .post(f"{URL}/{run.run_id}/gate", {"decision": "approve"}, format="json")
    )
    assert response.status_code == 409
    assert response.json()["code"] == "AUTOMATION_V2_GATE_ALREADY_APPROVED"
    pending = reviewers[0].client().get("/api/approvals/pending").json()["approvals"][0]
    assert pending["you_approved"] is True
    assert pending["quorum"]["summary"] == "1 of 2 approvals"
    assert (
        reviewers[1].client().get("/api/approvals/pending").json()["approvals"][0]["you_approved"]
        is False
    )


def test_a_group_requirement_unmet_by_m_approvals_from_outside_keeps_the_gate_open(
    operator, reviewers
):
    add_to_group(reviewers[2], "finance")
    run = awaiting(actor_for(operator), basic(policy=FINANCE))
    approve(reviewers[0], run)
    outside = approve(reviewers[1], run)  # M reached, but nobody from finance yet
    assert not outside.settled
    gate = open_gate(run)
    assert gate.quorum["summary"] == "2 of 2 approvals (finance: 0 of 1)"
    assert fresh(run).status == RunStatus.AWAITING_APPROVAL

    settled = approve(reviewers[2], run)
    assert settled.settled
    gate.refresh_from_db()
    assert gate.quorum["summary"] == "3 of 2 approvals (finance: 1 of 1)"
    assert gate.quorum["approved_by"][-1]["groups"] == ["finance"]


def test_a_rework_after_one_approval_is_a_veto_and_the_next_round_starts_from_none(
    operator, reviewers
):
    run = awaiting(actor_for(operator), basic(policy=TWO))
    first_opening = open_gate(run)
    approve(reviewers[0], run)
    veto = gate_decide(
        actor=actor_for(reviewers[1]), run=run, decision="rework", reason="Fix the figures"
    )
    assert veto.settled and veto.decision == "rework"
    assert fresh(run).status == RunStatus.QUEUED
    first_opening.refresh_from_db()
    assert first_opening.status == GateStatus.DECIDED

    complete(run, "draft", "review")
    engine.run_advance(run.run_id)
    second_opening = open_gate(run)
    assert second_opening.round == 2
    assert second_opening.quorum["summary"] == "0 of 2 approvals"
    # The approval of the superseded opening never counts: naming it is refused ...
    with pytest.raises(Conflict) as stale:
        approve(reviewers[1], run, approval_request_id=first_opening.pk)
    assert stale.value.code == "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
    # ... and the first round's approver approves afresh, counted as the first of this round.
    again = approve(reviewers[0], run)
    assert not again.settled
    second_opening.refresh_from_db()
    assert second_opening.quorum["approvals"] == 1


def test_cancel_after_one_approval_settles_at_once(operator, reviewers):
    run = awaiting(actor_for(operator), basic(policy=TWO))
    approve(reviewers[0], run)
    # Even the reviewer who approved may veto.
    outcome = gate_decide(actor=actor_for(reviewers[0]), run=run, decision="cancel")
    assert outcome.settled
    assert fresh(run).status == RunStatus.CANCELLED


def test_run_json_shows_the_progress_and_who_approved(operator, reviewers):
    run = awaiting(actor_for(operator), basic(policy=FINANCE))
    response = (
        reviewers[0]
        .client()
        .post(f"{URL}/{run.run_id}/gate", {"decision": "approve", "reason": "ok"}, format="json")
    )
    assert response.status_code == 200, response.json()
    body = response.json()["run"]
    assert body["status"] == "awaiting_approval"
    quorum = body["checkpoint"]["awaiting_gate"]["quorum"]
    assert quorum["summary"] == "1 of 2 approvals (finance: 0 of 1)"
    assert quorum["approved_by"] == [{"approver": "rev-0", "on_behalf_of": None, "groups": []}]
    entry = body["checkpoint"]["gate_history"][-1]
    assert (entry["decision"], entry["settles"], entry["on_behalf_of"]) == ("approve", False, None)
    # The run as read (and in lists) says the same.
    read = operator.client().get(f"{URL}/{run.run_id}").json()["run"]
    assert read["checkpoint"]["awaiting_gate"]["quorum"] == quorum
    listed = operator.client().get(f"{URL}?limit=5").json()
    assert any(r["checkpoint"]["awaiting_gate"]["quorum"] == quorum for r in listed["runs"])


def test_quorum_is_validated_when_saved(operator):
    bad = basic(policy={"quorum": {"required_approvals": 0}})
    response = operator.client().post(
        "/api/automations/v2",
        {"automation_id": "bad-quorum", "name": "x", "agents": AGENTS, "flow": {"nodes": bad}},
        format="json",
    )
    assert response.status_code == 400
    assert "quorum.required_approvals" in str(response.json())
    for quorum in (
        {"required_approvals": "2"},
        {"required_approvals": 2, "groups": [{"group": ""}]},
        {"required_approvals": 2, "groups": [{"group": "a", "approvals": 0}]},
        {"required_approvals": 2, "groups": "finance"},
        {"required_approvals": 2, "quorate": True},
        [2],
    ):
        bad = basic(policy={"quorum": quorum})
        response = operator.client().post(
            "/api/automations/v2",
            {"automation_id": "bad-quorum", "name": "x", "agents": AGENTS, "flow": {"nodes": bad}},
            format="json",
        )
        assert response.status_code == 400, (quorum, response.json())


def test_an_unsatisfiable_quorum_is_a_save_time_warning(operator, reviewers):
    add_to_group(reviewers[0], "finance")
    policy = {
        "risk_tier": "external_send",
        "quorum": {
            "required_approvals": 5,
            "groups": [{"group": "finance", "approvals": 2}, {"group": "legal", "approvals": 1}],
        },
    }
    response = operator.client().post(
        "/api/automations/v2",
        {
            "automation_id": "quorate",
            "name": "Quorate",
            "agents": AGENTS,
            "flow": {"nodes": basic(policy=policy)},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    warnings = [w for w in response.json()["warnings"] if w["code"] == "GATE_QUORUM_UNSATISFIABLE"]
    assert len(warnings) == 1
    message = warnings[0]["message"]
    assert "needs 5 different people" in message and "only 3 member(s)" in message
    assert "'finance' but 1 member(s)" in message and "'legal' but 0 member(s)" in message
    ok = {"risk_tier": "external_send", "quorum": {"required_approvals": 2}}
    response = operator.client().post(
        "/api/automations/v2",
        {
            "automation_id": "fine",
            "name": "Fine",
            "agents": AGENTS,
            "flow": {"nodes": basic(policy=ok)},
        },
        format="json",
    )
    assert not [w for w in response.json()["warnings"] if w["code"] == "GATE_QUORUM_UNSATISFIABLE"]


# --- 30 threads racing for the last approval, on PostgreSQL, with a real worker ------------------


@pytest.mark.django_db(transaction=True)
def test_thirty_threads_racing_for_the_last_approval_settle_once(
    operator, make_member, celery_worker
):
    from automations.services import automation_create, run_start
    from tests.support.wait import wait_for

    op = actor_for(operator)
    automation = automation_create(
        actor=op,
        data={
            "automation_id": "quorate",
            "name": "Quorate",
            "agents": [
                {
                    "agent_id": "agent-a",
                    "template_id": "template-a",
                    "model_policy": {"provider": "echo", "model": "echo-1"},
                }
            ],
            "flow": {"nodes": basic(policy=TWO)},
        },
    )
    run = run_start(actor=op, automation=automation)
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).exists(),
        timeout=30,
        message="the gate to open",
    )
    first = make_member("acme/ops", "first", role=Role.REVIEWER)
    assert not approve(first, run).settled
    racers = [
        actor_for(make_member("acme/ops", f"racer-{i}", role=Role.REVIEWER)) for i in range(30)
    ]
    barrier = threading.Barrier(len(racers))
    results: list[str] = []
    lock = threading.Lock()

    def race(actor) -> None:
        try:
            barrier.wait()
            try:
                outcome = gate_decide(actor=actor, run=run, decision="approve")
                result = "settled" if outcome.settled else "partial"
            except Conflict as exc:
                result = exc.code
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(a,)) for a in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"] * 29 + ["settled"]
    assert len(audits(run, DECIDED)) == 1
    gate = Gate.objects.get(run=run)
    assert GateDecision.objects.filter(gate=gate, settles=True).count() == 1
    assert GateDecision.objects.filter(gate=gate, decision="approve").count() == 2
    done = wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
        timeout=30,
        message="the run to complete",
    )
    publish = RunNode.objects.get(run=done, node_id="publish")
    assert (publish.state, publish.attempts) == ("completed", 1)
    started = LifecycleEvent.objects.filter(
        run=run, event="node_started", metadata__node_id="publish"
    )
    assert started.count() == 1
