"""`GET /api/approvals/pending` (SPEC §6.6): the open gates the caller may decide, tenant and
permissions filtered in the query (`approvals.selectors.gates_pending`), constant query count.

Gates are opened by the engine (`engine.run_advance` on a run whose upstream node completed).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.decisions import gate_decide
from approvals.models import Gate, GateStatus
from automations import engine
from automations.api.run_json import approval_url
from automations.models import NodeState, Run, RunStatus
from automations.services import grant_add
from governance.errors import Forbidden, NotFound
from governance.models import Role, WorkspaceGroup
from tests.factories import actor_for, agent_node, make_run, output

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

URL = "/api/approvals/pending"


def flow(**policy):
    gate = {
        "decisions": ["approve", "rework", "cancel"],
        "rework_targets": ["draft"],
        "instructions": "Check the draft",
    }
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


def open_gate(member, automation_id="plain", **policy) -> Gate:
    """A run of `automation_id` (created by `member` on first use) parked on its gate."""
    run = make_run(
        actor_for(member),
        flow(**policy),
        status=RunStatus.QUEUED,
        automation_id=automation_id,
        nodes={"draft": (NodeState.COMPLETED, 1, output(summary="draft"))},
    )
    engine.run_advance(run.run_id)
    return Gate.objects.select_related("run__automation").get(run=run, status=GateStatus.OPEN)


def listed(member, **params) -> list[str]:
    response = member.client().get(URL, params)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == len(body["approvals"])
    return [item["approval_request_id"] for item in body["approvals"]]


def test_anonymous_is_401(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_REQUIRED"


def test_item_shape(operator, reviewer):
    gate = open_gate(operator)
    body = reviewer.client().get(URL).json()
    assert body["count"] == 1
    (item,) = body["approvals"]
    run = gate.run
    assert item == {
        "approval_request_id": gate.pk,
        "transition_id": f"{gate.pk}:decision",
        "run_id": run.run_id,
        "automation_id": "plain",
        "node_id": "approval",
        "round": 1,
        "title": gate.title,
        "instructions": "Check the draft",
        "decisions": ["approve", "rework", "cancel"],
        "policy": {"reviewer_eligibility": "none", "risk_tier": None, "data_classes": []},
        "requested_at_ms": int(gate.requested_at.timestamp() * 1000),
        "expires_at_ms": int(gate.expires_at.timestamp() * 1000),
        "requested_by": "otto-operator",
        "reminder_count": 0,
        "escalated": False,
        "approve_refused": None,
        "lacks_independent_reviewer": False,
        "approval_url": approval_url(gate.pk),
        "quorum": None,
        "you_approved": False,
    }
    assert item["approval_url"].endswith(f"/approvals/{gate.pk}/")


def test_who_sees_a_plain_gate(operator, reviewer, viewer, admin, agent, make_member):
    """Review permission: reviewer role, admin, owner (the requester here) — not a viewer, a
    non-owning operator or an agent (only humans decide)."""
    gate = open_gate(operator)
    other_operator = make_member("acme/ops", "opal-operator", role=Role.OPERATOR)
    assert listed(reviewer) == [gate.pk]
    assert listed(admin) == [gate.pk]
    # The requester owns the automation: listed, as they may still rework or cancel.
    assert listed(operator) == [gate.pk]
    assert listed(viewer) == []
    assert listed(other_operator) == []
    assert listed(agent) == []


def test_grants_to_a_user_or_a_group_add_the_automation(operator, viewer, admin, make_member):
    granted = open_gate(operator, "granted")
    open_gate(operator, "other")
    grant_add(
        actor=actor_for(admin),
        automation=granted.run.automation,
        permission="review",
        username="vera-viewer",
    )
    assert listed(viewer) == [granted.pk]

    member = make_member("acme/ops", "gus-grouped", role=Role.VIEWER)
    group = Group.objects.create(name="acme-reviewers")
    WorkspaceGroup.objects.create(workspace=member.workspace, group=group)
    member.user.groups.add(group)
    assert listed(member) == []
    grant_add(
        actor=actor_for(admin),
        automation=granted.run.automation,
        permission="review",
        group_name="acme-reviewers",
    )
    assert listed(member) == [granted.pk]


def test_elevated_gates_need_review_elevated(operator, reviewer, admin):
    plain = open_gate(operator, "plain")
    elevated = open_gate(operator, "elevated", reviewer_eligibility="elevated_reviewer")
    assert listed(reviewer) == [plain.pk]
    assert listed(admin) == [elevated.pk, plain.pk]
    grant_add(
        actor=actor_for(admin),
        automation=elevated.run.automation,
        permission="review_elevated",
        username="rita-reviewer",
    )
    assert listed(reviewer) == [elevated.pk, plain.pk]


def test_data_classes_need_a_clearance_for_every_class(operator, admin, make_member):
    classified = open_gate(operator, "classified", data_classes=["financial_record", "regulated"])
    plain = open_gate(operator, "plain")
    one = make_member("acme/ops", "una-one", role=Role.REVIEWER, clearances=["financial_record"])
    both = make_member(
        "acme/ops", "bea-both", role=Role.REVIEWER, clearances=["financial_record", "regulated"]
    )
    assert listed(one) == [plain.pk]
    assert listed(both) == [plain.pk, classified.pk]
    # Clearances are never implied by the admin role.
    assert listed(admin) == [plain.pk]
    # A clearance held through a group counts.
    group = Group.objects.create(name="acme-regulated")
    WorkspaceGroup.objects.create(workspace=one.workspace, group=group)
    one.user.groups.add(group)
    assign_perm("governance.review_regulated", group, one.workspace)
    assert listed(one) == [plain.pk, classified.pk]


def test_another_workspace_never_shows(operator, reviewer, outsider, make_member):
    ours = open_gate(operator)
    globex_operator = make_member("globex/ops", "gina-globex", role=Role.OPERATOR)
    theirs = open_gate(globex_operator, "theirs")
    assert listed(outsider) == [theirs.pk]
    assert listed(reviewer) == [ours.pk]


def test_only_open_undecided_unexpired_gates(operator, reviewer):
    open_now = open_gate(operator, "a")
    expired = open_gate(operator, "b")
    Gate.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    closed = open_gate(operator, "c")
    Gate.objects.filter(pk=closed.pk).update(status=GateStatus.DECIDED)
    not_waiting = open_gate(operator, "d")
    Run.objects.filter(pk=not_waiting.run_id).update(status=RunStatus.PAUSED)
    assert listed(reviewer) == [open_now.pk]


def test_newest_first_and_limit(operator, reviewer):
    gates = [open_gate(operator) for _ in range(3)]
    now = timezone.now()
    for age, gate in enumerate(gates):
        Gate.objects.filter(pk=gate.pk).update(requested_at=now - timedelta(minutes=age))
    assert listed(reviewer) == [g.pk for g in gates]
    assert listed(reviewer, limit=2) == [g.pk for g in gates[:2]]


@pytest.mark.parametrize("limit", ["0", "201", "x", "-1"])
def test_bad_limit_is_400(reviewer, limit):
    response = reviewer.client().get(URL, {"limit": limit})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


def test_query_count_does_not_grow_with_gates(
    operator, admin, make_member, django_assert_num_queries
):
    """A viewer with grants (so every permission condition is in the query): token, membership,
    clearances, the page."""
    member = make_member("acme/ops", "gail-granted", role=Role.VIEWER, clearances=["regulated"])

    def grant(gate):
        grant_add(
            actor=actor_for(admin),
            automation=gate.run.automation,
            permission="review",
            username="gail-granted",
        )

    for i in range(2):
        grant(open_gate(operator, f"auto-{i}", data_classes=["regulated"]))
    with django_assert_num_queries(4):
        assert len(listed(member)) == 2
    for i in range(2, 20):
        grant(open_gate(operator, f"auto-{i}"))
    with django_assert_num_queries(4):
        assert len(listed(member)) == 20
    with django_assert_num_queries(4):
        assert len(listed(member, limit=200)) == 20


class _Undo(Exception):
    """Rolls back a decision that was only a probe."""


def decidable(member, gate) -> bool:
    """Whether the decision service lets `member` decide `gate` (cancel), without keeping it."""
    try:
        with transaction.atomic():
            gate_decide(actor=actor_for(member), run=gate.run, decision="cancel")
            raise _Undo
    except _Undo:
        return True
    except (Forbidden, NotFound):
        return False


def test_the_list_and_the_decision_apply_the_same_rules(operator, make_member):
    """Every kind of reviewer against every kind of gate: the pending list holds exactly the
    gates the decision service would let them decide (`approvals.policy` is the one
    definition of both)."""
    gates = {
        "plain": open_gate(operator, "plain"),
        "elevated": open_gate(operator, "elevated", reviewer_eligibility="elevated_reviewer"),
        "financial": open_gate(operator, "financial", data_classes=["financial_record"]),
        "two-classes": open_gate(
            operator, "two-classes", data_classes=["financial_record", "regulated"]
        ),
        "escalated": open_gate(operator, "escalated"),
    }
    Gate.objects.filter(pk=gates["escalated"].pk).update(
        escalated_at=timezone.now(), escalated_to=["erin-escalated"]
    )
    members = {
        "viewer": make_member("acme/ops", "vic-viewer", role=Role.VIEWER),
        "escalated viewer": make_member("acme/ops", "erin-escalated", role=Role.VIEWER),
        "reviewer": make_member("acme/ops", "rex-reviewer", role=Role.REVIEWER),
        "cleared reviewer": make_member(
            "acme/ops", "cleo-cleared", role=Role.REVIEWER, clearances=["financial_record"]
        ),
        "admin": make_member("acme/ops", "ada-admin", role=Role.ADMIN),
        "cleared admin": make_member(
            "acme/ops", "cal-admin", role=Role.ADMIN, clearances=["financial_record", "regulated"]
        ),
        "granted viewer": make_member("acme/ops", "gus-granted", role=Role.VIEWER),
        "agent": make_member("acme/ops", "bot-agent", role=Role.ADMIN, kind="agent"),
    }
    for gate in gates.values():
        for permission in ("review", "review_elevated"):
            grant_add(
                actor=actor_for(members["admin"]),
                automation=gate.run.automation,
                permission=permission,
                username="gus-granted",
            )
    for name, member in members.items():
        listed = {g["approval_request_id"] for g in member.client().get(URL).json()["approvals"]}
        allowed = {gate.pk for gate in gates.values() if decidable(member, gate)}
        assert listed == allowed, name
    expected = {
        "viewer": set(),
        "escalated viewer": {"escalated"},
        "reviewer": {"plain", "escalated"},
        "cleared reviewer": {"plain", "escalated", "financial"},
        "admin": {"plain", "escalated", "elevated"},
        "cleared admin": set(gates),
        "granted viewer": {"plain", "escalated", "elevated"},
        "agent": set(),
    }
    for name, member in members.items():
        listed = {g["approval_request_id"] for g in member.client().get(URL).json()["approvals"]}
        assert listed == {gates[g].pk for g in expected[name]}, name
