"""Approval requests over the API (issue 18): `POST /api/approvals/requests`, reading, listing,
deciding with edits and responses, and the governance every gate decision has."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.expiry import sweep_gates
from approvals.models import ApprovalRequest, Gate, GateDecision, GateStatus
from approvals.request_answers import canonical_digest
from automations.models import Automation, Run, RunStatus
from automations.services import grant_add
from governance.models import AuditEvent, PrincipalKind, Role
from tests.factories import REQUESTS_URL, actor_for, ask, new_automation, request_body
from tests.support.schema_conformance import SchemaConformance

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def decide(member, request_id, body):
    return member.client().post(f"{REQUESTS_URL}/{request_id}/decide", body, format="json")


def read(member, request_id, **query):
    return member.client().get(f"{REQUESTS_URL}/{request_id}", query)


def writes() -> tuple[int, int, int]:
    """What a refused decision must not change: decisions, audit events, decided requests."""
    return (
        GateDecision.objects.count(),
        AuditEvent.objects.count(),
        ApprovalRequest.objects.filter(decision__isnull=False).count(),
    )


def test_an_agents_request_opens_a_gate_on_the_pending_list(agent, reviewer):
    asked = ask(agent)
    assert asked["status"] == "pending"
    assert asked["requested_by"] == {"username": "bot-agent", "kind": "agent"}
    assert asked["approved_arguments"] is None and asked["decision"] is None
    assert asked["url"].endswith(f"/approvals/{asked['gate_id']}/")
    gate = Gate.objects.get(pk=asked["gate_id"])
    assert gate.status == GateStatus.OPEN and gate.title == "Pay invoice 42"
    assert gate.instructions == "Invoice 42 from ACME, due Friday."
    # Always consequential: the requester and those accountable for it never approve it.
    assert gate.policy["reviewer_eligibility"] == "any_human_reviewer"
    assert gate.reviewed["inputs"]["arguments"] == request_body()["arguments"]
    run = Run.objects.get(run_id=asked["run_id"])
    assert run.status == RunStatus.AWAITING_APPROVAL and run.requested_by == agent.user
    pending = reviewer.client().get("/api/approvals/pending").json()["approvals"]
    assert [p["approval_request_id"] for p in pending] == [asked["gate_id"]]
    assert pending[0]["title"] == "Pay invoice 42"
    created = AuditEvent.objects.get(event_type="approvals.request.created")
    assert created.payload["requestID"] == asked["request_id"]


def test_the_requests_automation_is_not_listed(agent, admin):
    ask(agent)
    assert Automation.objects.filter(automation_id="flowgate:approval-requests").count() == 1
    listed = admin.client().get("/api/automations/v2").json()["automations"]
    assert listed == []


def test_approve_with_an_edit_records_the_diff_and_the_agent_gets_the_edited_arguments(
    agent, reviewer
):
    asked = ask(agent)
    response = decide(
        reviewer,
        asked["request_id"],
        {"decision": "approve", "reason": "cap it", "arguments": {"amount": 90}},
    )
    assert response.status_code == 200, response.json()
    approved = {**request_body()["arguments"], "amount": 90}
    got = read(agent, asked["request_id"]).json()
    assert got["status"] == "approved"
    assert got["arguments"] == request_body()["arguments"]  # as proposed
    assert got["approved_arguments"] == approved
    assert got["decision"]["edited"] is True
    assert got["decision"]["diff"] == [{"path": "amount", "op": "replace", "from": 100, "to": 90}]
    assert got["decision"]["decided_by"] == {"username": "rita-reviewer", "kind": "human"}
    record = GateDecision.objects.get(gate_id=asked["gate_id"], settles=True)
    bound = record.metadata["request"]
    assert bound["approved_arguments_digest"] == canonical_digest(approved)
    assert bound["proposed_arguments_digest"] == canonical_digest(request_body()["arguments"])
    assert got["decision"]["digest"] == bound["decision_digest"]
    audit = AuditEvent.objects.get(event_type="automation.governance.gate_decided")
    assert audit.payload["approvalRequest"]["approved_arguments_digest"] == canonical_digest(
        approved
    )
    assert audit.payload["approvalRequest"]["diff"] == got["decision"]["diff"]


def test_approve_without_edits_approves_the_proposed_arguments(agent, reviewer):
    asked = ask(agent)
    assert decide(reviewer, asked["request_id"], {"decision": "approve"}).status_code == 200
    got = read(agent, asked["request_id"]).json()
    assert got["approved_arguments"] == request_body()["arguments"]
    assert got["decision"]["edited"] is False and got["decision"]["diff"] == []


@pytest.mark.parametrize(
    ("edits", "code", "field"),
    [
        ({"payee": {"iban": "XX99"}}, "APPROVAL_REQUEST_EDIT_NOT_ALLOWED", "arguments.payee.iban"),
        ({"extra": 1}, "APPROVAL_REQUEST_EDIT_NOT_ALLOWED", "arguments.extra"),
        ({"amount": 900}, "APPROVAL_REQUEST_EDIT_INVALID", "arguments.amount"),
        ({"amount": "ninety"}, "APPROVAL_REQUEST_EDIT_INVALID", "arguments.amount"),
    ],
)
def test_an_edit_outside_editable_or_against_the_schema_is_refused_with_nothing_written(
    agent, reviewer, edits, code, field
):
    asked = ask(agent)
    before = writes()
    response = decide(reviewer, asked["request_id"], {"decision": "approve", "arguments": edits})
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert field in response.json()["fields"]
    assert writes() == before
    assert read(agent, asked["request_id"]).json()["status"] == "pending"


def test_edits_go_with_an_approval_only(agent, reviewer):
    asked = ask(agent)
    response = decide(
        reviewer, asked["request_id"], {"decision": "cancel", "arguments": {"amount": 90}}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "APPROVAL_REQUEST_ANSWER_NOT_ALLOWED"


RAISING_POLICY = {
    "risk_tier": "consequential_write",
    "rules": [
        {
            "when": {"properties": {"amount": {"minimum": 300}}, "required": ["amount"]},
            "risk_tier": "money_movement_contract",
        },
        {
            "when": {"properties": {"memo": {"pattern": "payroll"}}, "required": ["memo"]},
            "data_classes": ["financial_record"],
        },
    ],
}


def test_an_edit_raising_the_risk_tier_needs_elevated_authority(agent, reviewer, admin):
    asked = ask(agent, policy=RAISING_POLICY)
    assert asked["effective_policy"]["risk_tier"] == "consequential_write"
    response = decide(
        reviewer, asked["request_id"], {"decision": "approve", "arguments": {"amount": 400}}
    )
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED"
    assert not GateDecision.objects.filter(gate_id=asked["gate_id"], settles=True).exists()
    assert read(agent, asked["request_id"]).json()["status"] == "pending"
    # The same reviewer may approve the unedited request, and an admin (elevated) the edit.
    response = decide(
        admin, asked["request_id"], {"decision": "approve", "arguments": {"amount": 400}}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["approved_arguments"]["amount"] == 400


def test_an_edit_adding_a_data_class_needs_its_clearance(agent, reviewer, make_member):
    asked = ask(agent, policy=RAISING_POLICY)
    edit = {"decision": "approve", "arguments": {"memo": "payroll March"}}
    response = decide(reviewer, asked["request_id"], edit)
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED"
    cleared = make_member(
        "acme/ops", "clara-cleared", role=Role.REVIEWER, clearances=["financial_record"]
    )
    assert decide(cleared, asked["request_id"], edit).status_code == 200


def test_the_requesting_agents_grantor_cannot_approve(agent, admin, reviewer):
    automation = new_automation(actor_for(admin), "payments")
    grant_add(
        actor=actor_for(admin), automation=automation, permission="operate", username="bot-agent"
    )
    asked = ask(agent)
    response = decide(admin, asked["request_id"], {"decision": "approve"})
    assert response.status_code == 403, response.json()
    body = response.json()
    assert body["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert body["reason"] == "requester_grantor"
    # The grantor may still cancel or send back; someone not accountable approves.
    assert decide(reviewer, asked["request_id"], {"decision": "approve"}).status_code == 200


def test_the_requester_cannot_approve_its_own_request(agent, admin):
    asked = ask(agent)
    response = decide(agent, asked["request_id"], {"decision": "approve"})
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_GATE_REQUIRES_HUMAN"
    mine = ask(admin, policy={"reviewer_eligibility": "none"})  # raised to any_human_reviewer
    response = decide(admin, mine["request_id"], {"decision": "approve"})
    assert response.status_code == 403
    assert response.json()["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert response.json()["reason"] == "requester"


def test_a_response_schema_answer_is_validated_and_returned(agent, reviewer):
    schema = {
        "type": "object",
        "properties": {
            "channel": {"enum": ["sepa", "swift"]},
            "note": {"type": "string"},
        },
        "required": ["channel"],
    }
    asked = ask(agent, response_schema=schema)
    url = asked["request_id"]
    missing = decide(reviewer, url, {"decision": "approve"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "APPROVAL_REQUEST_RESPONSE_INVALID"
    wrong = decide(reviewer, url, {"decision": "approve", "response": {"channel": "pigeon"}})
    assert wrong.status_code == 400 and "response.channel" in wrong.json()["fields"]
    ok = decide(reviewer, url, {"decision": "approve", "response": {"channel": "sepa"}})
    assert ok.status_code == 200, ok.json()
    assert read(agent, url).json()["response"] == {"channel": "sepa"}


def test_rework_sends_the_request_back_and_ends_its_run(agent, reviewer):
    asked = ask(agent)
    response = decide(reviewer, asked["request_id"], {"decision": "rework", "reason": "split it"})
    assert response.status_code == 200
    got = response.json()
    assert got["status"] == "rework" and got["approved_arguments"] is None
    assert got["decision"]["reason"] == "split it"
    run = Run.objects.get(run_id=asked["run_id"])
    assert run.status == RunStatus.CANCELLED
    assert Gate.objects.filter(run=run).count() == 1  # no new round opens


def test_the_same_idempotency_key_returns_the_same_request(agent):
    client = agent.client()
    first = client.post(REQUESTS_URL, request_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(REQUESTS_URL, request_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["request_id"] == first.json()["request_id"]
    assert again["Idempotent-Replayed"] == "true"
    assert ApprovalRequest.objects.count() == 1
    other = client.post(
        REQUESTS_URL, request_body(summary="Other"), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_expiry_fails_closed(agent, reviewer):
    asked = ask(agent, expiry={"expires_after_s": 60})
    Gate.objects.filter(pk=asked["gate_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    # Past its time, before any sweep: expired, and a decision is refused.
    assert read(agent, asked["request_id"]).json()["status"] == "expired"
    late = decide(reviewer, asked["request_id"], {"decision": "approve"})
    assert late.status_code == 409 and late.json()["code"] == "AUTOMATION_V2_GATE_EXPIRED"
    sweep_gates()
    got = read(agent, asked["request_id"]).json()
    assert got["status"] == "expired"
    assert got["approved_arguments"] is None and got["decision"] is None
    assert Run.objects.get(run_id=asked["run_id"]).status == RunStatus.CANCELLED
    listed = agent.client().get(REQUESTS_URL, {"status": "expired"}).json()["requests"]
    assert [r["request_id"] for r in listed] == [asked["request_id"]]


def test_tenancy_and_visibility(agent, reviewer, outsider, make_member, client):
    asked = ask(agent)
    rid = asked["request_id"]
    assert client.get(f"{REQUESTS_URL}/{rid}").status_code == 401
    assert client.post(REQUESTS_URL, request_body(), format="json").status_code == 401
    for response in (read(outsider, rid), decide(outsider, rid, {"decision": "approve"})):
        assert response.status_code == 404
        assert response.json()["code"] == "APPROVAL_REQUEST_NOT_FOUND"
    assert outsider.client().get(REQUESTS_URL).json()["requests"] == []
    other_agent = make_member("acme/ops", "bot-two", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
    assert read(other_agent, rid).status_code == 404  # an agent sees only its own
    assert other_agent.client().get(REQUESTS_URL).json()["requests"] == []
    assert read(reviewer, rid).status_code == 200
    assert read(reviewer, "x" * 500).status_code == 404


def test_a_viewer_may_not_request(viewer):
    response = viewer.client().post(REQUESTS_URL, request_body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "APPROVAL_REQUEST_FORBIDDEN"
    assert AuditEvent.objects.filter(payload__code="APPROVAL_REQUEST_FORBIDDEN").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "not a name"}, "action"),
        ({"arguments": [1]}, "arguments"),
        ({"summary": "  "}, "summary"),
        ({"unknown": 1}, "unknown"),
        ({"context": {"text": "x", "extra": 1}}, "context"),
        ({"context": {"links": [{"title": "x", "url": "javascript:alert(1)"}]}}, "context"),
        ({"response_schema": {"type": "nonsense"}}, "response_schema"),
        ({"editable": {"paths": []}}, "editable"),
        ({"editable": {"paths": ["amount"], "schema": {"type": 3}}}, "editable.schema"),
        (
            {
                "editable": {
                    "paths": ["amount"],
                    "schema": {"properties": {"amount": {"maximum": 5}}},
                }
            },
            "editable.schema",
        ),
        ({"policy": {"risk_tier": 5}}, "policy.risk_tier"),
        ({"policy": {"data_classes": ["secret-sauce"]}}, "policy.data_classes"),
        ({"policy": {"rules": [{"when": {"type": 3}}]}}, "policy.rules.0.when"),
        ({"policy": {"bogus": 1}}, "policy.bogus"),
        ({"expiry": {"on_expiry": "never"}}, "expiry.on_expiry"),
    ],
)
def test_invalid_requests_are_400_with_field_errors_and_write_nothing(agent, change, field):
    body = {**request_body(), **change}
    response = agent.client().post(REQUESTS_URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert not ApprovalRequest.objects.exists() and not Run.objects.exists()


def test_list_pages_with_a_cursor_and_filters_by_status(agent, reviewer):
    ids = [ask(agent, summary=f"Pay {n}")["request_id"] for n in range(3)]
    decide(reviewer, ids[0], {"decision": "approve"})
    first = agent.client().get(REQUESTS_URL, {"limit": 2}).json()
    assert [r["request_id"] for r in first["requests"]] == [ids[2], ids[1]]
    rest = agent.client().get(REQUESTS_URL, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [r["request_id"] for r in rest["requests"]] == [ids[0]] and rest["next_cursor"] is None
    pending = agent.client().get(REQUESTS_URL, {"status": "pending"}).json()
    assert {r["request_id"] for r in pending["requests"]} == {ids[1], ids[2]}
    approved = reviewer.client().get(REQUESTS_URL, {"status": "approved"}).json()
    assert [r["request_id"] for r in approved["requests"]] == [ids[0]]


# Token, membership, then one query for the page with its gates, runs, requesters and decisions.
LIST_QUERIES = 3


@pytest.mark.parametrize("count", [1, 4])
def test_the_list_costs_a_fixed_number_of_queries(
    agent, reviewer, count, django_assert_num_queries
):
    for n in range(count):
        asked = ask(agent, summary=f"Pay {n}")
        if n % 2:
            decide(reviewer, asked["request_id"], {"decision": "approve"})
    client = reviewer.client()
    with django_assert_num_queries(LIST_QUERIES):
        body = client.get(REQUESTS_URL).json()
    assert body["count"] == count


def test_every_request_response_conforms_to_the_schema(agent, reviewer, viewer):
    conformance = SchemaConformance(viewer.client().get("/api/schema/", {"format": "json"}).json())

    def check(method, path, response, status):
        assert response.status_code == status, response.content[:300]
        conformance.check(method, path, response)

    asked = agent.client().post(REQUESTS_URL, request_body(), format="json")
    check("POST", REQUESTS_URL, asked, 201)
    rid = asked.json()["request_id"]
    path = f"{REQUESTS_URL}/{rid}"
    check("GET", path, agent.client().get(path), 200)
    check("GET", REQUESTS_URL, agent.client().get(REQUESTS_URL), 200)
    bad = decide(reviewer, rid, {"decision": "approve", "arguments": {"amount": 0}})
    check("POST", f"{path}/decide", bad, 400)
    ok = decide(reviewer, rid, {"decision": "approve", "arguments": {"amount": 9}})
    check("POST", f"{path}/decide", ok, 200)
    check("GET", path, agent.client().get(path), 200)
    check(
        "POST", REQUESTS_URL, viewer.client().post(REQUESTS_URL, request_body(), format="json"), 403
    )
    assert conformance.problems == []


def test_a_quorum_in_the_request_policy_needs_that_many_distinct_reviewers(
    agent, reviewer, make_member
):
    """Issue 19 applies to agent requests too: 2-of-N, the same person counted once, nothing
    approved until the second approval, and no approver can approve arguments the other did
    not (edits are refused under a quorum, with nothing written)."""
    second = make_member("acme/ops", "rita", role=Role.REVIEWER)
    asked = ask(agent, policy={"quorum": {"required_approvals": 2}})
    assert Gate.objects.get(pk=asked["gate_id"]).policy["quorum"]["required_approvals"] == 2

    before = writes()
    edit = decide(
        reviewer, asked["request_id"], {"decision": "approve", "arguments": {"amount": 9}}
    )
    assert (edit.status_code, edit.json()["code"]) == (400, "APPROVAL_REQUEST_EDIT_NOT_ALLOWED")
    assert writes() == before

    first = decide(reviewer, asked["request_id"], {"decision": "approve"})
    assert first.status_code == 200, first.json()
    assert read(agent, asked["request_id"]).json()["status"] == "pending"
    again = decide(reviewer, asked["request_id"], {"decision": "approve"})
    assert (again.status_code, again.json()["code"]) == (409, "AUTOMATION_V2_GATE_ALREADY_APPROVED")

    assert decide(second, asked["request_id"], {"decision": "approve"}).status_code == 200
    got = read(agent, asked["request_id"]).json()
    assert got["status"] == "approved"
    assert got["approved_arguments"] == request_body()["arguments"]


def test_a_malformed_request_quorum_is_400(agent):
    response = agent.client().post(
        REQUESTS_URL, request_body(policy={"quorum": {"required_approvals": 0}}), format="json"
    )
    assert response.status_code == 400
    assert "policy.quorum.required_approvals" in response.json()["fields"]


def test_a_quorum_request_cannot_ask_for_a_response(agent):
    """Each approver of a quorum would answer, and only the completing one's answer would be
    kept: such a request is refused when made, with nothing written."""
    before = (ApprovalRequest.objects.count(), AuditEvent.objects.count())
    response = agent.client().post(
        REQUESTS_URL,
        request_body(
            policy={"quorum": {"required_approvals": 2}},
            response_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
        ),
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert "quorum" in " ".join(response.json()["fields"]["response_schema"])
    assert (ApprovalRequest.objects.count(), AuditEvent.objects.count()) == before
