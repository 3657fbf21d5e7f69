"""Standing approvals (issue 18, item 6): a human approves in advance, for a while, one action
of one agent within argument constraints; matching requests are approved as `standing`, each
use audited and visible; revocable; never a way around separation of duties or authority."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest, GateDecision, StandingApproval
from approvals.requests import request_create
from automations.services import grant_add
from governance.models import AuditEvent, Membership, PrincipalKind, Role
from tests.factories import (
    REQUESTS_URL,
    STANDING_URL,
    actor_for,
    ask,
    grant,
    grant_body,
    granted,
    new_automation,
    request_body,
)

pytestmark = pytest.mark.usefixtures("no_broker")


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("pk"))


def writes() -> tuple[int, int]:
    return StandingApproval.objects.count(), AuditEvent.objects.count()


# --- A use ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_matching_request_is_approved_at_once_as_standing(agent, reviewer):
    standing = granted(reviewer)
    assert standing["active"] is True and standing["use_count"] == 0
    asked = ask(agent)
    assert asked["status"] == "approved", asked
    assert asked["approved_arguments"] == request_body()["arguments"]
    decision = asked["decision"]
    assert decision["surface"] == "standing"
    assert decision["standing_approval"] == standing["id"]
    assert decision["decided_by"] == {"username": "rita-reviewer", "kind": "human"}
    assert decision["digest"]
    record = GateDecision.objects.get(gate_id=asked["gate_id"], settles=True)
    assert (record.source, record.decided_by.username) == ("standing", "rita-reviewer")
    # Each use is audited after the decision itself, and visible on the grant and the list.
    decided = events("automation.governance.gate_decided")
    assert decided[0].payload["decidedBy"]["source"] == "standing"
    [used] = events("approvals.standing_approval.used")
    assert used.payload["requestID"] == asked["request_id"]
    assert used.payload["useCount"] == 1 and used.pk > decided[0].pk
    read = reviewer.client().get(f"{STANDING_URL}/{standing['id']}").json()
    assert read["use_count"] == 1
    uses = reviewer.client().get(REQUESTS_URL, {"standing_approval": standing["id"]}).json()
    assert [r["request_id"] for r in uses["requests"]] == [asked["request_id"]]
    # Nothing waits on the pending list.
    assert reviewer.client().get("/api/approvals/pending").json()["approvals"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides",
    [
        {"arguments": {"amount": 400, "memo": "Invoice 43", "payee": {"iban": "DE00 1234"}}},
        {"action": "payments.refund"},
        {"policy": {"data_classes": ["financial_record"]}},
        {"policy": {"risk_tier": "money_movement_contract"}},
        {"policy": {"reviewer_eligibility": "elevated_reviewer"}},
        {"policy": {"quorum": {"required_approvals": 2}}},
        {"response_schema": {"type": "object", "properties": {"channel": {"enum": ["sepa"]}}}},
    ],
    ids=[
        "arguments-outside-constraints",
        "another-action",
        "a-data-class-beyond-the-grant",
        "another-approval-tier",
        "stricter-eligibility",
        "two-person-rule",
        "a-question-for-a-human",
    ],
)
def test_a_request_the_grant_does_not_cover_waits_for_a_human(agent, reviewer, overrides):
    granted(reviewer)
    asked = ask(agent, **overrides)
    assert asked["status"] == "pending"
    assert not events("approvals.standing_approval.used")
    assert StandingApproval.objects.get().use_count == 0


@pytest.mark.django_db
def test_a_grant_with_a_tier_and_a_data_class_covers_requests_within_them(
    agent, admin, make_member
):
    make_member("acme/ops", "rich-clear", role=Role.ADMIN, clearances=["financial_record"])
    grantor = make_member("acme/ops", "gail", role=Role.ADMIN, clearances=["financial_record"])
    policy = {"risk_tier": "consequential_write", "data_classes": ["financial_record"]}
    granted(grantor, policy=policy)
    asked = ask(agent, policy=policy)
    assert asked["status"] == "approved", asked
    # A tier needing no approval is within any grant; another approval tier is not.
    assert ask(agent, policy={"risk_tier": "read_only"})["status"] == "approved"
    assert ask(agent, policy={"risk_tier": "external_send"})["status"] == "pending"


@pytest.mark.django_db
def test_only_the_grantee_benefits(agent, reviewer, make_member):
    other = make_member("acme/ops", "other-agent", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
    granted(reviewer)
    assert ask(other)["status"] == "pending"
    assert ask(agent)["status"] == "approved"


@pytest.mark.django_db
def test_max_uses_ends_the_grant(agent, reviewer):
    standing = granted(reviewer, max_uses=2)
    assert [ask(agent)["status"] for _ in range(3)] == ["approved", "approved", "pending"]
    read = reviewer.client().get(f"{STANDING_URL}/{standing['id']}").json()
    assert (read["use_count"], read["active"]) == (2, False)


@pytest.mark.django_db
def test_an_expired_grant_approves_nothing(agent, reviewer):
    standing = granted(reviewer)
    StandingApproval.objects.filter(pk=standing["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert ask(agent)["status"] == "pending"


# --- Revoking ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_revoked_grants_approve_nothing_and_only_the_grantor_or_an_admin_revokes(
    agent, reviewer, admin, make_member
):
    standing = granted(reviewer, max_uses=None)
    url = f"{STANDING_URL}/{standing['id']}/revoke"
    peer = make_member("acme/ops", "peer-reviewer", role=Role.REVIEWER)
    for member in (agent, peer):
        response = member.client().post(url, {"reason": "not mine"}, format="json")
        assert response.status_code == 403, response.json()
    revoked = reviewer.client().post(url, {"reason": "invoice run done"}, format="json")
    assert revoked.status_code == 200, revoked.json()
    assert revoked.json()["active"] is False
    assert revoked.json()["revoke_reason"] == "invoice run done"
    assert revoked.json()["revoked_by"] == "rita-reviewer"
    [event] = events("approvals.standing_approval.revoked")
    assert event.payload["revokeReason"] == "invoice run done"
    assert ask(agent)["status"] == "pending"
    again = admin.client().post(url, {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "APPROVALS_STANDING_NOT_ACTIVE"
    # An admin may revoke anyone's.
    other = granted(reviewer)
    assert admin.client().post(f"{STANDING_URL}/{other['id']}/revoke").status_code == 200


# --- Who may grant -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agent_cannot_grant(agent, make_member):
    make_member("acme/ops", "bot-2", role=Role.ADMIN, kind=PrincipalKind.AGENT)
    before = writes()
    response = grant(agent, grantee="bot-2")
    assert response.status_code == 403
    assert response.json()["code"] == "APPROVALS_STANDING_REQUIRES_HUMAN"
    assert writes() == before


@pytest.mark.django_db
def test_a_member_without_review_permission_cannot_grant(agent, operator):
    response = grant(operator)
    assert response.status_code == 403
    assert StandingApproval.objects.count() == 0
    [denied] = events("automation.governance.denied")
    assert denied.payload["action"] == "grant_standing_approval"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "policy",
    [{"data_classes": ["financial_record"]}, {"reviewer_eligibility": "elevated_reviewer"}],
)
def test_a_grant_needs_the_authority_its_policy_needs(agent, reviewer, policy):
    response = grant(reviewer, policy=policy)
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_DENIED"
    assert StandingApproval.objects.count() == 0
    assert events("automation.governance.denied")


@pytest.mark.django_db
def test_the_agents_grantor_cannot_launder_approval_through_a_standing_grant(agent, admin):
    automation = new_automation(actor_for(admin), "payments")
    grant_add(
        actor=actor_for(admin), automation=automation, permission="operate", username="bot-agent"
    )
    response = grant(admin)
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert StandingApproval.objects.count() == 0
    [denied] = events("automation.governance.denied")
    assert denied.payload["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"constraints": {"type": "objekt"}}, "constraints"),
        ({"grantee": "nobody"}, "grantee"),
        ({"grantee": "rita-reviewer"}, "grantee"),  # a human: standing grants are for agents
        ({"policy": {"risk_teir": "read_only"}}, "policy.risk_teir"),
        ({"policy": {"quorum": {"required_approvals": 2}}}, "policy.quorum"),
        ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": (timezone.now() + timedelta(days=91)).isoformat()}, "expires_at"),
        ({"reason": "  "}, "reason"),
        ({"action": "pay ments"}, "action"),
        ({"max_uses": 0}, "max_uses"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_grants_are_refused_with_every_problem_and_nothing_written(
    agent, reviewer, overrides, field
):
    before = writes()
    response = grant(reviewer, **overrides)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert writes() == before


# --- Use-time re-judging -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_grantor_who_lost_the_reviewer_role_approves_nothing(agent, reviewer):
    standing = granted(reviewer)
    Membership.objects.filter(user=reviewer.user).update(role=Role.VIEWER)
    asked = ask(agent)
    assert asked["status"] == "pending"
    [skipped] = events("approvals.standing_approval.not_applied")
    assert skipped.payload["standingApprovalID"] == standing["id"]
    assert skipped.payload["code"] == "AUTOMATION_V2_ACCESS_DENIED"
    assert StandingApproval.objects.get().use_count == 0


@pytest.mark.django_db
def test_a_grantor_who_later_grants_the_agent_something_approves_nothing(agent, admin):
    granted(admin)
    automation = new_automation(actor_for(admin), "payments")
    grant_add(
        actor=actor_for(admin), automation=automation, permission="operate", username="bot-agent"
    )
    asked = ask(agent)
    assert asked["status"] == "pending"
    [skipped] = events("approvals.standing_approval.not_applied")
    assert skipped.payload["code"] == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    # The refused decision is audited as any gate decision refusal.
    assert events("automation.governance.gate_decision_denied")


@pytest.mark.django_db
def test_a_grantor_no_longer_a_member_approves_nothing(agent, reviewer):
    granted(reviewer)
    Membership.objects.filter(user=reviewer.user).delete()
    assert ask(agent)["status"] == "pending"
    [skipped] = events("approvals.standing_approval.not_applied")
    assert skipped.payload["code"] == "APPROVALS_STANDING_GRANTOR_NOT_MEMBER"


# --- Reading -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_who_sees_which_grants(agent, reviewer, operator, outsider, make_member):
    other = make_member("acme/ops", "other-agent", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
    mine = granted(reviewer)
    granted(reviewer, grantee="other-agent")

    def listed(member, **query):
        return [
            g["id"] for g in member.client().get(STANDING_URL, query).json()["standing_approvals"]
        ]

    assert len(listed(reviewer)) == 2
    assert listed(agent) == [mine["id"]]
    assert len(listed(other)) == 1 and listed(other) != [mine["id"]]
    assert listed(operator) == []
    assert outsider.client().get(f"{STANDING_URL}/{mine['id']}").status_code == 404
    assert operator.client().get(f"{STANDING_URL}/{mine['id']}").status_code == 404
    assert agent.client().get(f"{STANDING_URL}/{mine['id']}").status_code == 200
    reviewer.client().post(f"{STANDING_URL}/{mine['id']}/revoke")
    assert mine["id"] not in listed(reviewer, active="true")
    assert listed(reviewer, active="false") == [mine["id"]]


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_however_long(agent, reviewer):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = reviewer.client().get(STANDING_URL)
        assert response.status_code == 200
        return len(captured)

    granted(reviewer)
    one = queries()
    for _ in range(5):
        granted(reviewer)
    assert queries() == one


@pytest.mark.django_db
def test_an_idempotent_retry_returns_the_same_grant(agent, reviewer):
    body = grant_body()
    headers = {"HTTP_IDEMPOTENCY_KEY": "grant-1"}
    first = reviewer.client().post(STANDING_URL, body, format="json", **headers)
    again = reviewer.client().post(STANDING_URL, body, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert StandingApproval.objects.count() == 1


# --- Concurrency: a limit holds across concurrent requests, on PostgreSQL -----------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_max_uses(agent, reviewer):
    granted(reviewer, max_uses=3)
    actor = actor_for(agent)
    racers = 8
    barrier = threading.Barrier(racers)
    statuses: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        try:
            barrier.wait()
            made = request_create(actor=actor, data=request_body())
            with lock:
                statuses.append("approved" if made.standing_approval_id else "pending")
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["approved"] * 3 + ["pending"] * 5
    assert StandingApproval.objects.get().use_count == 3
    assert ApprovalRequest.objects.filter(standing_approval__isnull=False).count() == 3
    assert len(events("approvals.standing_approval.used")) == 3


# --- The admin -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_and_revokes_through_the_service(agent, reviewer, admin, operator):
    from django.urls import reverse

    from tests.support.admin import console, messages_of

    standing = granted(reviewer)
    ask(agent)
    changelist = reverse("admin:approvals_standingapproval_changelist")
    body = {"action": "revoke", "index": "0", "_selected_action": standing["id"]}
    # A staff member who neither granted it nor administers the workspace does not see it.
    assert "bot-agent" not in console(operator).get(changelist).content.decode()
    console(operator).post(changelist, body, follow=True)
    assert StandingApproval.objects.get().revoked_at is None
    page = console(admin).get(changelist).content.decode()
    assert "bot-agent" in page and "payments.send" in page
    done = console(admin).post(changelist, body, follow=True)
    assert any("revoked" in m for m in messages_of(done)), messages_of(done)
    assert StandingApproval.objects.get().revoked_at is not None
    [revoked] = events("approvals.standing_approval.revoked")
    assert revoked.actor_id == "ada-admin"
    assert ask(agent)["status"] == "pending"


@pytest.mark.django_db
def test_the_approval_page_says_which_standing_approval_approved_it(agent, reviewer, admin):
    from django.test import Client
    from django.urls import reverse

    from tests.support.pages import page_text

    standing = granted(reviewer)
    asked = ask(agent)
    browser = Client()
    browser.force_login(admin.user)
    page = browser.get(reverse("approval_pages:gate", args=[asked["gate_id"]]))
    text = page_text(page)
    assert "via standing approval" in text
    assert f"rita-reviewer's standing approval {standing['id']}" in text
    assert "Small supplier payments this week" in text
