"""Separation of duties (issue 13): nobody accountable for a run's work may approve its
consequential gates, through every way the issue found to launder it, over the real API.

Each refusal names its rule (`approvals.policy.SEPARATION_RULES`); the pending list marks the
same rule, and a reviewer who is not accountable still approves.
"""

from __future__ import annotations

import pytest

from approvals.models import Gate, GateStatus
from automations import engine
from automations.models import Run
from governance.models import AuditEvent, Role

pytestmark = pytest.mark.django_db

URL = "/api/automations/v2"
SELF = "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("automations.scheduling.advance_now", lambda run_id, **kw: None)


def automation_body(automation_id="payout", **policy):
    return {
        "automation_id": automation_id,
        "name": "Payout",
        "agents": [{"agent_id": "payer", "model_policy": {"provider": "echo"}}],
        "flow": {
            "nodes": [
                {
                    "node_id": "approval",
                    "kind": "approval",
                    "gate": {
                        "policy": policy
                        or {
                            "reviewer_eligibility": "elevated_reviewer",
                            "risk_tier": "money_movement_contract",
                        }
                    },
                },
                {
                    "node_id": "pay",
                    "kind": "agent",
                    "agent_id": "payer",
                    "depends_on": ["approval"],
                    "objective": "Move the money",
                },
            ]
        },
    }


def create(member, **policy):
    response = member.client().post(URL, automation_body(**policy), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def grant(by, permission, to, automation_id="payout"):
    return by.client().post(
        f"{URL}/{automation_id}/grants",
        {"user": to.user.username, "permission": permission},
        format="json",
    )


def start(member, automation_id="payout") -> str:
    response = member.client().post(f"{URL}/{automation_id}/run_now", {}, format="json")
    assert response.status_code in (200, 201, 202), response.json()
    run_id = response.json()["run"]["run_id"]
    engine.run_advance(run_id)
    assert Gate.objects.filter(run__run_id=run_id, status=GateStatus.OPEN).exists()
    return run_id


def decide(member, run_id, decision="approve"):
    return member.client().post(
        f"{URL}/runs/{run_id}/gate", {"decision": decision, "reason": "ok"}, format="json"
    )


def assert_refused(response, rule):
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == SELF
    assert response.json()["reason"] == rule


@pytest.fixture
def elevated(make_member):
    """A reviewer with elevated authority (granted by a workspace admin), not accountable."""
    return make_member("acme/ops", "eli-elevated", role=Role.REVIEWER)


def test_an_agent_proxy_does_not_launder_the_grantors_approval(admin, operator, agent, elevated):
    """Issue 13: an operator granted an agent `operate`, the agent ran it, the operator approved
    (200, because the requester was the agent). Here the grantor is an admin who is not the
    creator, so the grantor rule itself is what refuses."""
    create(operator)
    assert grant(admin, "operate", agent).status_code == 201
    run_id = start(agent)

    assert_refused(decide(admin, run_id), "requester_grantor")
    assert_refused(decide(operator, run_id), "automation_creator")
    denied = AuditEvent.objects.filter(event_type="automation.governance.gate_decision_denied")
    assert [e.payload["code"] for e in denied] == [SELF, SELF]

    # Rework and cancel by the accountable stay allowed; revoking the grant changes nothing.
    grants = admin.client().get(f"{URL}/payout/grants").json()["grants"]
    admin.client().delete(f"{URL}/payout/grants/{grants[0]['grant_id']}")
    assert_refused(decide(admin, run_id), "requester_grantor")
    assert decide(admin, run_id, "cancel").status_code == 200


def test_the_creator_may_not_approve_a_run_a_second_operator_started(
    admin, operator, make_member, elevated
):
    """Issue 13: when a second operator started the run, its creator's approval was 200."""
    second = make_member("acme/ops", "opal-operator", role=Role.OPERATOR)
    create(operator)
    run_id = start(second)

    assert_refused(decide(operator, run_id), "automation_creator")
    assert grant(admin, "review_elevated", elevated).status_code == 201
    assert decide(elevated, run_id).status_code == 200


def test_the_author_of_the_version_a_run_executes_may_not_approve_it(admin, operator, elevated):
    create(operator)
    assert grant(admin, "change", elevated).status_code == 201
    assert grant(admin, "review_elevated", elevated).status_code == 201
    patched = elevated.client().patch(f"{URL}/payout", {"description": "v2"}, format="json")
    assert patched.status_code == 200
    run_id = start(operator)
    assert Run.objects.get(run_id=run_id).automation_snapshot["changed_by_id"] == (elevated.user.pk)

    assert_refused(decide(elevated, run_id), "version_author")
    assert decide(admin, run_id).status_code == 200  # an admin who changed nothing


def test_the_requester_is_refused_and_rework_stays_allowed(admin, elevated):
    create(admin)
    run_id = start(admin)
    assert_refused(decide(admin, run_id), "requester")
    assert decide(admin, run_id, "rework").status_code == 200


def test_an_owners_review_grants_are_refused(operator, viewer, admin):
    """Issue 13: an automation's owner granted `review_elevated` to a viewer, who approved."""
    create(operator)
    for permission in ("review", "review_elevated"):
        response = grant(operator, permission, viewer)
        assert response.status_code == 403
        assert response.json()["code"] == "AUTOMATION_V2_GRANT_FORBIDDEN"
    assert grant(operator, "operate", viewer).status_code == 201
    assert grant(admin, "review_elevated", viewer).status_code == 201
    denied = AuditEvent.objects.filter(event_type="automation.governance.denied")
    assert [e.payload["code"] for e in denied] == ["AUTOMATION_V2_GRANT_FORBIDDEN"] * 2


def test_a_grant_never_lets_anyone_approve_their_own_work(admin, operator, agent):
    """Even a workspace admin granting themselves everything stays barred from their own run."""
    create(admin)
    assert grant(admin, "review_elevated", admin).status_code == 201
    run_id = start(admin)
    assert_refused(decide(admin, run_id), "requester")


def test_the_pending_list_marks_the_rule_the_decision_applies(admin, operator, agent, elevated):
    create(operator)
    grant(admin, "operate", agent)
    grant(admin, "review_elevated", elevated)
    run_id = start(agent)

    def listed(member):
        rows = member.client().get("/api/approvals/pending").json()["approvals"]
        return {row["run_id"]: row["approve_refused"] for row in rows}

    assert listed(admin) == {run_id: "requester_grantor"}
    assert listed(operator) == {run_id: "automation_creator"}
    assert listed(elevated) == {run_id: None}
    assert decide(elevated, run_id).status_code == 200


def test_a_gate_only_the_accountable_can_decide_is_reported_and_marked(make_member):
    """Issue 13: a gate whose policy nobody could satisfy was accepted silently."""
    operator = make_member("acme/ops", "otis", role=Role.OPERATOR, clearances=["regulated"])
    body = create(operator, risk_tier="money_movement_contract", data_classes=["regulated"])
    assert [w["code"] for w in body["warnings"]] == ["GATE_NO_INDEPENDENT_REVIEWER"]
    assert body["warnings"][0]["node_id"] == "approval"

    run_id = start(operator)
    assert Gate.objects.get(run__run_id=run_id).lacks_independent_reviewer
    row = operator.client().get("/api/approvals/pending").json()["approvals"][0]
    assert row["lacks_independent_reviewer"] is True

    make_member("acme/ops", "reg-reviewer", role=Role.REVIEWER, clearances=["regulated"])
    read = operator.client().get(f"{URL}/payout").json()
    assert read["warnings"] == []
