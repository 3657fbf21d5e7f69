"""Attacks on standing approvals (`approvals.standing`) that got through: each test is a
reproduction of a finding and states what must hold instead.

1. A grantor who lost the authority a grant needs (the reviewer role, a clearance) keeps
   approving through a delegation someone else gave them for their own reviewing: the use
   borrows the delegator's authority, although the delegator never granted anything and the
   rules say such a grantor "approves nothing" (docs/agents.md, "Standing approvals").
2. A grant whose `constraints` refer (`$ref`) to something that does not resolve passes the
   schema check, then fails every request of its action by its grantee with a 500: the agent
   cannot even ask a human until the grant is revoked.
3. The grant's `constraints` were evaluated with Python's backtracking `re` while the request's
   transaction held the lock of the workspace's approval-requests automation: a plausible
   `pattern` in a grant ("words separated by spaces") and an argument crafted by the grantee
   stalled every other approval request of the workspace (exponential in the argument's length;
   26 characters is seconds, 34 a quarter of an hour). Fixed for the lock (the constraints are
   judged before the transaction); the crafted request itself still burns its worker's CPU.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from approvals.delegation import delegation_create
from approvals.models import ApprovalRequest, GateDecision, StandingApproval
from approvals.requests import request_create
from governance.models import AuditEvent, Membership, PrincipalKind, Role
from governance.services import clearances_set
from tests.factories import REQUESTS_URL, actor_for, ask, request_body

pytestmark = pytest.mark.usefixtures("no_broker")

STANDING_URL = "/api/approvals/standing"
SMALL_PAYMENTS = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "maximum": 200}},
    "required": ["amount"],
}
FINANCIAL = {"data_classes": ["financial_record"]}


def granted(member, **overrides) -> dict:
    body = {
        "action": "payments.send",
        "grantee": "bot-agent",
        "constraints": SMALL_PAYMENTS,
        "expires_at": (timezone.now() + timedelta(days=7)).isoformat(),
        "reason": "Small supplier payments this week",
        **overrides,
    }
    response = member.client().post(STANDING_URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def demote(member) -> None:
    Membership.objects.filter(user=member.user, workspace=member.workspace).update(role=Role.VIEWER)


def unclear(member) -> None:
    clearances_set(
        workspace=member.workspace, user=member.user, data_classes=[], actor=actor_for(member)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policy", "lose"),
    [({}, demote), (FINANCIAL, unclear)],
    ids=["lost-the-reviewer-role", "lost-the-clearance"],
)
def test_a_grantor_who_lost_authority_approves_nothing_even_as_someones_delegate(
    agent, make_member, policy, lose
):
    grantor = make_member("acme/ops", "gina", role=Role.REVIEWER, clearances=["financial_record"])
    boss = make_member("acme/ops", "boris", role=Role.REVIEWER, clearances=["financial_record"])
    standing = granted(grantor, policy=policy)
    lose(grantor)
    assert ask(agent, policy=policy)["status"] == "pending"  # the rule, as documented
    # Boris goes on leave and lends Gina his authority to review in his place: a delegation for
    # the decisions *she* makes, not an approval in advance of anything.
    delegation_create(
        actor=actor_for(boss), delegate="gina", ends_at=timezone.now() + timedelta(days=3)
    )

    asked = ask(agent, policy=policy)

    assert asked["status"] == "pending", asked["decision"]
    assert not GateDecision.objects.filter(gate_id=asked["gate_id"], settles=True).exists()
    assert StandingApproval.objects.get(pk=standing["id"]).use_count == 0
    assert (
        AuditEvent.objects.filter(event_type="approvals.standing_approval.not_applied").count() == 2
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "constraints",
    [
        {"$ref": "#/$defs/payment"},
        {"type": "object", "properties": {"payee": {"$ref": "https://schemas.example.com/p"}}},
    ],
    ids=["local-pointer-to-nowhere", "remote-reference"],
)
def test_constraints_that_cannot_be_applied_never_break_the_agents_requests(
    agent, reviewer, constraints
):
    client = agent.client()
    client.raise_request_exception = False
    create = reviewer.client().post(
        STANDING_URL,
        {
            "action": "payments.send",
            "grantee": "bot-agent",
            "constraints": constraints,
            "expires_at": (timezone.now() + timedelta(days=7)).isoformat(),
            "reason": "typo in the schema",
        },
        format="json",
    )
    # Either refused when granted (400, nothing written) …
    if create.status_code == 400:
        assert "constraints" in create.json()["fields"]
        assert StandingApproval.objects.count() == 0
    else:
        assert create.status_code == 201, create.json()

    # … or, granted, it covers nothing: the request is made and waits for a human.
    response = client.post(REQUESTS_URL, request_body(), format="json")

    assert response.status_code == 201, response.content[:200]
    assert response.json()["status"] == "pending"
    assert ApprovalRequest.objects.filter(pk=response.json()["request_id"]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_grantees_crafted_argument_never_stalls_the_workspaces_other_requests(
    agent, reviewer, make_member
):
    """The crafted request runs in a process of its own, as in a server: Python's `re` holds
    the GIL while it backtracks, so a thread would stall this test's thread too."""
    words = {
        "type": "object",
        "properties": {"memo": {"type": "string", "pattern": "^([a-z0-9]+ ?)+$"}},
    }
    granted(reviewer, constraints=words)
    bystander = make_member("acme/ops", "other-bot", role=Role.OPERATOR, kind=PrincipalKind.AGENT)
    crafted = request_body(arguments={"amount": 100, "memo": "a" * 26 + "!"})
    grantee = actor_for(agent)
    connection.close()  # the child opens its own

    def stall() -> None:
        request_create(actor=grantee, data=crafted)
        connection.close()

    staller = multiprocessing.get_context("fork").Process(target=stall)
    staller.start()
    time.sleep(1.5)  # the crafted request holds the automation's lock by now
    begun = time.monotonic()
    made = request_create(actor=actor_for(bystander), data=request_body())
    waited = time.monotonic() - begun
    staller.join(timeout=60)

    assert made.pk
    assert waited < 1.0, f"another agent's request waited {waited:.1f}s for the crafted one"
