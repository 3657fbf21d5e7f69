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
   26 characters is seconds, 34 a quarter of an hour). Fixed twice: the constraints are judged
   before the transaction, and every user-written schema's `pattern` runs on RE2 in linear time
   (`governance.json_schemas`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from approvals.delegation import delegation_create
from approvals.models import ApprovalRequest, GateDecision, StandingApproval
from approvals.requests import request_create
from governance.models import AuditEvent, Membership, Role
from governance.services import clearances_set
from tests.factories import REQUESTS_URL, STANDING_URL, actor_for, ask, granted, request_body
from tests.support.processes import finishes_within

pytestmark = pytest.mark.usefixtures("no_broker")

FINANCIAL = {"data_classes": ["financial_record"]}


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
def test_a_grantees_crafted_argument_is_judged_in_linear_time(agent, reviewer):
    """The crafted request runs in a process of its own, as in a server: Python's `re` would
    hold the GIL for ages backtracking over 40 characters (2^40 steps); RE2 answers at once.
    Whether it finishes at all within a minute is the claim, not how fast."""
    words = {
        "type": "object",
        "properties": {"memo": {"type": "string", "pattern": "^([a-z0-9]+ ?)+$"}},
    }
    granted(reviewer, constraints=words)
    crafted = request_body(arguments={"amount": 100, "memo": "a" * 40 + "!"})
    grantee = actor_for(agent)
    connection.close()  # the child opens its own

    def crafted_request() -> None:
        request_create(actor=grantee, data=crafted)
        connection.close()

    assert finishes_within(crafted_request, 60)
    made = ApprovalRequest.objects.get()
    assert made.standing_approval_id is None  # "a…a!" is no words: not covered, waits for a human
