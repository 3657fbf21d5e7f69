"""Delegation of review authority (`approvals.delegation`): a delegate decides with the
delegator's authority, both people recorded; never where either is accountable for the work
(a delegation to or from the requester lets nobody approve it); chains are not followed; the
API (`/api/approvals/delegations`) by every kind of caller; created, revoked and expired
delegations audited."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.delegation import delegation_create, delegations_expire
from approvals.models import Delegation, GateDecision
from governance.errors import Forbidden, InvalidRequest
from governance.models import AuditEvent, Role
from tests.factories import GOVERNED, actor_for, awaiting, basic, fresh, open_gate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

URL = "/api/approvals/delegations"
RUNS = "/api/automations/v2/runs"


def later(**kwargs):
    return timezone.now() + timedelta(**kwargs)


def lend(delegator, delegate, **kwargs) -> Delegation:
    return delegation_create(
        actor=actor_for(delegator),
        delegate=delegate.user.username,
        ends_at=kwargs.pop("ends_at", later(days=7)),
        **kwargs,
    )


def events(event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


@pytest.fixture
def treasurer(make_member):
    """Holds everything a GOVERNED gate asks for: elevated review and the clearance."""
    return make_member(
        "acme/ops", "tom-treasurer", role=Role.ADMIN, clearances=["financial_record"]
    )


def test_a_delegated_decision_records_both_people(operator, viewer, treasurer):
    run = awaiting(actor_for(operator), basic(policy=GOVERNED))
    with pytest.raises(Forbidden):  # the viewer on their own may not review
        gate_decide(actor=actor_for(viewer), run=run, decision="approve")
    lend(treasurer, viewer)
    response = viewer.client().post(
        f"{RUNS}/{run.run_id}/gate", {"decision": "approve", "reason": "for Tom"}, format="json"
    )
    assert response.status_code == 200, response.json()
    entry = response.json()["run"]["checkpoint"]["gate_history"][-1]
    assert entry["decided_by"]["actor_id"] == "vera-viewer"
    assert entry["on_behalf_of"] == "tom-treasurer"
    record = GateDecision.objects.get(run=run, settles=True)
    assert (record.decided_by, record.on_behalf_of) == (viewer.user, treasurer.user)
    (decided,) = events("automation.governance.gate_decided")
    assert decided.actor_id == "vera-viewer"
    assert decided.payload["onBehalfOf"] == "tom-treasurer"
    assert decided.payload["decidedBy"]["on_behalf_of"] == "tom-treasurer"
    assert fresh(run).status == "queued"


def test_a_delegation_to_the_requester_does_not_let_them_approve(operator, treasurer):
    run = awaiting(actor_for(operator), basic(policy=GOVERNED))
    lend(treasurer, operator)  # allowed to create: who is accountable depends on the run
    with pytest.raises(Forbidden) as refused:
        gate_decide(actor=actor_for(operator), run=run, decision="approve")
    assert refused.value.code == "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
    assert refused.value.extra["reason"] == "requester"
    assert not GateDecision.objects.filter(run=run).exists()
    # Rework stays theirs to send, with the delegator's authority, recorded as such.
    outcome = gate_decide(actor=actor_for(operator), run=run, decision="rework", reason="redo")
    assert outcome.record.on_behalf_of == treasurer.user


def test_a_delegation_from_the_requester_lends_no_approval(make_member, viewer):
    """The requester's authority never approves their own work, whoever holds it."""
    owner = make_member("acme/ops", "owen-owner", role=Role.ADMIN, clearances=["financial_record"])
    run = awaiting(actor_for(owner), basic(policy=GOVERNED))
    lend(owner, viewer)
    with pytest.raises(Forbidden) as refused:
        gate_decide(actor=actor_for(viewer), run=run, decision="approve")
    assert refused.value.extra["reason"] == "on_behalf_of:requester"


def test_delegation_chains_are_not_followed(operator, viewer, reviewer, treasurer):
    run = awaiting(actor_for(operator), basic(policy=GOVERNED))
    lend(treasurer, reviewer)
    lend(reviewer, viewer)  # the reviewer passes on what was lent to them: not followed
    with pytest.raises(Forbidden):
        gate_decide(actor=actor_for(viewer), run=run, decision="approve")
    assert gate_decide(actor=actor_for(reviewer), run=run, decision="approve").settled


def test_a_revoked_or_ended_delegation_lends_nothing(operator, viewer, treasurer):
    run = awaiting(actor_for(operator), basic(policy=GOVERNED))
    lent = lend(treasurer, viewer)
    response = treasurer.client().delete(f"{URL}/{lent.pk}")
    assert response.status_code == 204
    with pytest.raises(Forbidden):
        gate_decide(actor=actor_for(viewer), run=run, decision="approve")
    ended = lend(treasurer, viewer, starts_at=later(days=-2), ends_at=later(days=7))
    Delegation.objects.filter(pk=ended.pk).update(ends_at=later(seconds=-1))
    with pytest.raises(Forbidden):
        gate_decide(actor=actor_for(viewer), run=run, decision="approve")


def test_a_delegate_counts_once_for_the_delegator_in_a_quorum(
    operator, viewer, reviewer, make_member
):
    policy = {"risk_tier": "external_send", "quorum": {"required_approvals": 2}}
    run = awaiting(actor_for(operator), basic(policy=policy))
    lend(reviewer, viewer)
    partial = gate_decide(actor=actor_for(viewer), run=run, decision="approve")
    assert not partial.settled
    gate = open_gate(run)
    assert gate.quorum["approved_by"] == [
        {"approver": "vera-viewer", "on_behalf_of": "rita-reviewer", "groups": []}
    ]
    # The delegator's authority was counted: they cannot count a second time themselves.
    with pytest.raises(Exception) as twice:
        gate_decide(actor=actor_for(reviewer), run=run, decision="approve")
    assert twice.value.code == "AUTOMATION_V2_GATE_ALREADY_APPROVED"
    other = make_member("acme/ops", "olga-other", role=Role.REVIEWER)
    assert gate_decide(actor=actor_for(other), run=run, decision="approve").settled


def test_delegating_to_oneself_is_refused(reviewer):
    with pytest.raises(InvalidRequest) as refused:
        lend(reviewer, reviewer)
    assert refused.value.code == "APPROVALS_DELEGATION_TO_SELF"
    response = reviewer.client().post(
        URL, {"delegate": "rita-reviewer", "ends_at": later(days=1).isoformat()}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "APPROVALS_DELEGATION_TO_SELF"
    assert not Delegation.objects.exists()


# --- the API by every kind of caller -----------------------------------------------------------


def test_anonymous_is_401():
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401
    assert APIClient().post(URL, {}, format="json").status_code == 401
    assert APIClient().delete(f"{URL}/1").status_code == 401


def test_create_list_and_revoke_are_audited(reviewer, viewer, admin):
    response = reviewer.client().post(
        URL,
        {"delegate": "vera-viewer", "ends_at": later(days=3).isoformat(), "reason": "leave"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["delegator"], body["delegate"], body["active"]) == (
        "rita-reviewer",
        "vera-viewer",
        True,
    )
    (created,) = events("automation.governance.delegation_created")
    assert created.payload["delegate"] == "vera-viewer" and created.actor_id == "rita-reviewer"
    for member in (reviewer, viewer, admin):  # both people, and a workspace admin, see it
        listed = member.client().get(URL).json()
        assert [d["id"] for d in listed["delegations"]] == [body["id"]]
    response = viewer.client().delete(f"{URL}/{body['id']}")  # the delegate may decline it
    assert response.status_code == 204
    (revoked,) = events("automation.governance.delegation_revoked")
    assert revoked.actor_id == "vera-viewer"
    again = reviewer.client().delete(f"{URL}/{body['id']}")
    assert again.status_code == 409
    assert again.json()["code"] == "APPROVALS_DELEGATION_NOT_ACTIVE"


def test_other_members_and_workspaces_do_not_see_it(reviewer, viewer, operator, outsider):
    lent = lend(reviewer, viewer)
    assert operator.client().get(URL).json()["delegations"] == []
    assert operator.client().delete(f"{URL}/{lent.pk}").status_code == 404
    assert outsider.client().get(URL).json()["delegations"] == []
    response = outsider.client().delete(f"{URL}/{lent.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "APPROVALS_DELEGATION_NOT_FOUND"
    assert Delegation.objects.get(pk=lent.pk).revoked_at is None


def test_agents_may_not_delegate_and_delegates_must_be_human_members(agent, reviewer, outsider):
    response = agent.client().post(
        URL, {"delegate": "rita-reviewer", "ends_at": later(days=1).isoformat()}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "APPROVALS_DELEGATION_REQUIRES_HUMAN"
    for delegate in ("bot-agent", "oscar-outsider", "nobody"):
        response = reviewer.client().post(
            URL, {"delegate": delegate, "ends_at": later(days=1).isoformat()}, format="json"
        )
        assert response.status_code == 400, delegate
        assert response.json()["code"] == "APPROVALS_DELEGATION_DELEGATE_INVALID"
    for ends_at in (later(days=-1).isoformat(), later(days=400).isoformat(), "tomorrow", None):
        response = reviewer.client().post(
            URL, {"delegate": "bot-agent", "ends_at": ends_at}, format="json"
        )
        assert response.status_code == 400
    assert not Delegation.objects.exists()


def test_the_list_costs_the_same_queries_whatever_its_length(
    admin, make_member, django_assert_num_queries
):
    people = [make_member("acme/ops", f"p-{i}", role=Role.REVIEWER) for i in range(6)]
    lend(people[0], people[1])
    with django_assert_num_queries(3) as one:  # token, membership, the page
        assert len(admin.client().get(URL).json()["delegations"]) == 1
    for a, b in itertools.pairwise(people[1:]):
        lend(a, b)
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(admin.client().get(URL).json()["delegations"]) == 5


def test_ended_delegations_are_audited_once(reviewer, viewer):
    lent = lend(reviewer, viewer)
    Delegation.objects.filter(pk=lent.pk).update(
        starts_at=later(days=-1), ends_at=later(seconds=-1)
    )
    assert delegations_expire(now=timezone.now()) == 1
    assert delegations_expire(now=timezone.now()) == 0
    (expired,) = events("automation.governance.delegation_expired")
    assert expired.payload["delegationID"] == lent.pk and expired.actor_kind == "system"


def test_the_admin_lists_and_revokes_through_the_service(admin, reviewer, viewer, operator):
    from django.urls import reverse

    from tests.support.admin import console, messages_of

    lent = lend(reviewer, viewer)
    changelist = reverse("admin:approvals_delegation_changelist")
    body = {"action": "revoke", "index": "0", "_selected_action": str(lent.pk)}
    # A staff member who is neither party nor workspace admin does not see it: nothing revoked.
    assert "rita-reviewer" not in console(operator).get(changelist).content.decode()
    console(operator).post(changelist, body, follow=True)
    assert Delegation.objects.get(pk=lent.pk).revoked_at is None
    page = console(admin).get(changelist)
    assert "rita-reviewer" in page.content.decode()
    done = console(admin).post(changelist, body, follow=True)
    assert any("revoked" in m for m in messages_of(done)), messages_of(done)
    assert Delegation.objects.get(pk=lent.pk).revoked_at is not None
    (revoked,) = events("automation.governance.delegation_revoked")
    assert revoked.actor_id == "ada-admin" and revoked.payload["delegationID"] == lent.pk
