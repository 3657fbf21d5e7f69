"""`POST /api/automations/v2/runs/{run_id}/gate`: body shape, error bodies, tenancy,
permissions, audit, `gate_history` in the run JSON, and an approval released to a real worker.
"""

from __future__ import annotations

import pytest

from approvals.models import Gate, GateDecision, GateStatus
from automations import engine, selectors
from automations.api.run_json import run_json
from automations.models import Run, RunNode, RunStatus
from governance.models import AuditEvent
from tests.factories import actor_for, awaiting, basic, complete, open_gate

pytestmark = pytest.mark.django_db

URL = "/api/automations/v2/runs"
DENIED = "automation.governance.gate_decision_denied"


@pytest.fixture(autouse=True)
def broker_for_the_worker_only(request):
    """The broker is kept out (`no_broker`) except for the test whose real worker must be
    handed the run's next step."""
    if "celery_worker_factory" not in request.fixturenames:
        request.getfixturevalue("no_broker")


def post(member, run_id, body, **kwargs):
    return member.client().post(f"{URL}/{run_id}/gate", body, format="json", **kwargs)


def denials(run) -> list[str]:
    return list(
        AuditEvent.objects.filter(event_type=DENIED, payload__runID=run.run_id).values_list(
            "payload__code", flat=True
        )
    )


def test_approve_answers_the_run(operator, reviewer):
    run = awaiting(actor_for(operator))
    gate = open_gate(run)
    response = post(
        reviewer,
        run.run_id,
        {
            "decision": "approve",
            "reason": "looks good",
            "approval_request_id": gate.pk,
            "transition_id": gate.transition_id,
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    run_json = body["run"]
    assert run_json["status"] == "queued"
    assert run_json["checkpoint"]["awaiting_gate"] is None
    assert "approval" in run_json["checkpoint"]["completed_nodes"]
    assert run_json["checkpoint"]["node_outputs"]["approval"]["contract_kind"] == "approval_gate"
    (entry,) = run_json["checkpoint"]["gate_history"]
    assert entry["decision"] == "approve" and entry["reason"] == "looks good"
    assert entry["decided_by"] == {"kind": "human", "actor_id": "rita-reviewer", "source": "api"}
    assert entry["round"] == 1 and entry["approval_request_id"] == gate.pk


# The API's decision, statement by statement (a regression in any of them fails here): token,
# membership role, run lookup; in the transaction (a savepoint pair here, BEGIN/COMMIT in
# production) the run, node and gate locks, grants with clearances in one query, the lifecycle
# and gate history for the answer; the decision insert, run, node and gate updates, the
# lifecycle insert, the audit head and event; the `gate.decided` event (its insert and the
# workspace's webhook endpoints). Cancel leaves the nodes alone (one fewer) and records
# `run.cancelled` too (two more).
DECISION_QUERIES = {"approve": 20, "rework": 20, "cancel": 21}


@pytest.mark.parametrize("decision", ["approve", "rework", "cancel"])
def test_decision_costs_a_fixed_number_of_queries(
    operator, make_member, decision, django_assert_num_queries
):
    """Also with history to render (a second round) and a classified gate (clearances read
    with the grants). Rework resets several nodes in one statement, as approve completes one."""
    cleared = make_member("acme/ops", "cleo", role="reviewer", clearances=["financial_record"])
    policy = {"reviewer_eligibility": "any_human_reviewer", "data_classes": ["financial_record"]}
    run = awaiting(actor_for(operator), basic(policy=policy))
    assert post(cleared, run.run_id, {"decision": "rework"}).status_code == 200
    engine.run_advance(run.run_id)
    for node in ("draft", "review"):
        RunNode.objects.filter(run=run, node_id=node).update(state="completed")
    engine.run_advance(run.run_id)
    assert open_gate(run).round == 2
    with django_assert_num_queries(DECISION_QUERIES[decision]):
        response = post(cleared, run.run_id, {"decision": decision, "reason": "r"})
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("decision", ["approve", "rework", "cancel"])
def test_answer_is_the_run_as_read_back(operator, reviewer, decision):
    """The run JSON is rendered from the rows the decision wrote and the history read under its
    lock: it must equal the run read back afterwards."""
    run = awaiting(actor_for(operator))
    response = post(reviewer, run.run_id, {"decision": decision, "reason": "why"})
    assert response.status_code == 200, response.json()
    read_back = run_json(selectors.run_get(actor_for(reviewer), run.run_id))
    assert response.json()["run"] == read_back
    assert read_back["checkpoint"]["gate_history"][-1]["decision"] == decision


def test_request_id_is_an_alias(operator, reviewer):
    run = awaiting(actor_for(operator))
    response = post(reviewer, run.run_id, {"decision": "approve", "request_id": "nope"})
    assert response.status_code == 409
    assert response.json()["code"] == "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
    gate = open_gate(run)
    response = post(reviewer, run.run_id, {"decision": "Approve", "request_id": gate.pk})
    assert response.status_code == 200, response.json()


def test_awaiting_gate_names_the_opening(operator, reviewer):
    run = awaiting(actor_for(operator))
    gate = open_gate(run)
    awaiting_gate = (
        reviewer.client().get(f"{URL}/{run.run_id}").json()["run"]["checkpoint"]["awaiting_gate"]
    )
    assert awaiting_gate["approval_request_id"] == gate.pk
    assert awaiting_gate["transition_id"] == gate.transition_id
    assert awaiting_gate["decisions"] == ["approve", "rework", "cancel"]


def test_guard_denial_shows_in_gate_history_and_keeps_the_gate_open(operator, reviewer):
    run = awaiting(actor_for(operator))
    response = post(
        reviewer, run.run_id, {"decision": "approve", "transition_id": "gate-x:decision"}
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"
    assert body["runID"] == run.run_id and body["nodeID"] == "approval"
    run_json = reviewer.client().get(f"{URL}/{run.run_id}").json()["run"]
    assert run_json["status"] == "awaiting_approval"
    assert run_json["checkpoint"]["awaiting_gate"] is not None
    assert [e["decision"] for e in run_json["checkpoint"]["gate_history"]] == ["guard_denied"]
    assert denials(run) == ["AUTOMATION_V2_GATE_TRANSITION_GUARD_DENIED"]


def test_rework_then_approve_shows_both_rounds(operator, reviewer):
    run = awaiting(actor_for(operator))
    assert post(reviewer, run.run_id, {"decision": "rework"}).status_code == 200
    complete(run, "draft", "review")
    engine.run_advance(run.run_id)
    second = open_gate(run)
    response = post(reviewer, run.run_id, {"decision": "approve", "approval_request_id": second.pk})
    assert response.status_code == 200, response.json()
    history = response.json()["run"]["checkpoint"]["gate_history"]
    assert [(e["decision"], e["round"]) for e in history] == [("rework", 1), ("approve", 2)]


def test_409_body_names_the_winner(operator, reviewer, admin):
    run = awaiting(actor_for(operator))
    cancelled = post(reviewer, run.run_id, {"decision": "cancel", "reason": "scope drifted"})
    assert cancelled.status_code == 200
    response = post(admin, run.run_id, {"decision": "approve"})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "AUTOMATION_V2_RUN_NOT_AWAITING_APPROVAL"
    assert body["error"] == "Run is not awaiting approval"
    assert body["currentStatus"] == "cancelled"
    assert body["winningDecision"]["decision"] == "cancel"
    assert body["winningDecision"]["reason"] == "scope drifted"
    assert body["winningDecision"]["node_id"] == "approval"


def test_decision_not_offered_is_400(operator, reviewer):
    flow = basic(decisions=["approve", "cancel"], rework_targets=())
    run = awaiting(actor_for(operator), flow, automation_id="ac")
    response = post(reviewer, run.run_id, {"decision": "rework"})
    assert response.status_code == 400
    assert response.json()["code"] == "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED"
    response = post(reviewer, run.run_id, {"decision": "maybe"})
    assert response.status_code == 400
    assert response.json()["code"] == "AUTOMATION_V2_GATE_INVALID_DECISION"
    assert denials(run) == [
        "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED",
        "AUTOMATION_V2_GATE_INVALID_DECISION",
    ]


def test_expired_gate_is_409(operator, reviewer):
    from datetime import timedelta

    from django.utils import timezone

    run = awaiting(actor_for(operator))
    Gate.objects.filter(run=run).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = post(reviewer, run.run_id, {"decision": "approve"})
    assert response.status_code == 409
    assert response.json()["code"] == "AUTOMATION_V2_GATE_EXPIRED"
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL


def test_self_approval_is_403(operator):
    run = awaiting(
        actor_for(operator), basic(policy={"risk_tier": "external_send"}), automation_id="s"
    )
    response = post(operator, run.run_id, {"decision": "approve"})
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert post(operator, run.run_id, {"decision": "rework"}).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "decision"),
        ({"decision": 5}, "decision"),
        ({"decision": "approve", "reason": 5}, "reason"),
        ({"decision": "approve", "approval_request_id": ["x"]}, "approval_request_id"),
        ({"decision": "approve", "typo": 1}, "typo"),
    ],
)
def test_strict_body(operator, reviewer, body, field):
    run = awaiting(actor_for(operator))
    response = post(reviewer, run.run_id, body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert field in str(response.json())
    assert Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL


def test_malformed_json_is_400(operator, reviewer):
    run = awaiting(actor_for(operator))
    response = reviewer.client().post(
        f"{URL}/{run.run_id}/gate", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_other_workspace_is_404(operator, outsider):
    run = awaiting(actor_for(operator))
    response = post(outsider, run.run_id, {"decision": "approve"})
    assert response.status_code == 404
    assert response.json() == {
        "error": "Run not found",
        "code": "AUTOMATION_V2_RUN_NOT_FOUND",
        "runID": run.run_id,
    }
    assert post(outsider, "run-does-not-exist", {"decision": "approve"}).json() == {
        "error": "Run not found",
        "code": "AUTOMATION_V2_RUN_NOT_FOUND",
        "runID": "run-does-not-exist",
    }
    assert denials(run) == []


def test_viewer_is_403_and_audited(operator, viewer):
    run = awaiting(actor_for(operator))
    response = post(viewer, run.run_id, {"decision": "approve"})
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_ACCESS_DENIED"
    assert denials(run) == ["AUTOMATION_V2_ACCESS_DENIED"]


def test_agent_is_403_requires_human_and_audited(operator, agent):
    run = awaiting(actor_for(operator))
    # A header claiming a human surface changes nothing: the kind comes from the token.
    response = post(
        agent, run.run_id, {"decision": "approve"}, HTTP_X_TANDEM_REQUEST_SOURCE="control_panel"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_GATE_REQUIRES_HUMAN"
    assert denials(run) == ["AUTOMATION_V2_GATE_REQUIRES_HUMAN"]
    assert not GateDecision.objects.filter(run=run).exists()
    assert Gate.objects.get(run=run).status == GateStatus.OPEN


def test_anonymous_is_401(operator, client):
    run = awaiting(actor_for(operator))
    response = client.post(f"{URL}/{run.run_id}/gate", {"decision": "approve"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_REQUIRED"


@pytest.mark.django_db(transaction=True)
def test_approval_releases_the_downstream_to_the_worker(operator, make_member, celery_worker):
    """Ten reviewers decide at once over HTTP; one wins, and a real worker then runs the
    downstream node to completion exactly once."""
    import threading

    from django.db import connection

    from automations.models import LifecycleEvent
    from automations.services import automation_create, run_start
    from tests.support.wait import wait_for

    op = actor_for(operator)
    automation = automation_create(
        actor=op,
        data={
            "automation_id": "released",
            "name": "Released",
            "agents": [
                {
                    "agent_id": "agent-a",
                    "template_id": "template-a",
                    "model_policy": {"provider": "echo", "model": "echo-1"},
                }
            ],
            "flow": {"nodes": basic()},
        },
    )
    run = run_start(actor=op, automation=automation)
    wait_for(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).exists(),
        timeout=30,
        message="the gate to open",
    )
    reviewers = [make_member("acme/ops", f"rev-{i}", role="reviewer") for i in range(10)]
    barrier = threading.Barrier(len(reviewers))
    codes: list[int] = []

    def decide(member) -> None:
        try:
            client = member.client()
            barrier.wait()
            response = client.post(
                f"{URL}/{run.run_id}/gate", {"decision": "approve"}, format="json"
            )
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(m,)) for m in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 9
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
    assert GateDecision.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_conflicting_request_id_alias_is_refused(operator):
    response = operator.client().post(
        "/api/automations/v2/runs/run-0123/gate",
        {"decision": "approve", "approval_request_id": "gate-a", "request_id": "gate-b"},
        format="json",
    )
    assert response.status_code == 400
    assert "request_id" in response.json()["fields"]
