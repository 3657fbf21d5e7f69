"""The approval pages of a quorum gate and under delegation: the progress and who approved on
the gate page and the pending list, the message after a partial approval, a reviewer who
approved already told so (no second approve), and a delegate told for whom they decide."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.decisions import gate_decide
from approvals.delegation import delegation_create
from governance.models import Role
from tests.factories import GOVERNED, actor_for, review_gate
from tests.support.pages import page_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

TWO = {"risk_tier": "external_send", "quorum": {"required_approvals": 2}}


def signed_in(member) -> Client:
    member.user.refresh_from_db()
    client = Client()
    client.force_login(member.user)
    return client


def gate_url(gate) -> str:
    return reverse("approval_pages:gate", args=[gate.pk])


def test_the_pages_show_the_progress_and_refuse_a_second_approval(operator, reviewer, make_member):
    other = make_member("acme/ops", "oz-other", role=Role.REVIEWER)
    gate = review_gate(actor_for(operator), policy=TWO)
    client = signed_in(reviewer)
    assert "0 of 2 approvals" in page_text(client.get(gate_url(gate)))
    posted = client.post(
        gate_url(gate), {"approval_request_id": gate.pk, "decision": "approve", "reason": ""}
    )
    assert posted.status_code == 302
    text = page_text(client.get(posted["Location"]))
    assert "Your approval is recorded: 1 of 2 approvals." in text
    assert "1 of 2 approvals : approved by rita-reviewer" in text
    assert "You have already approved this opening" in text
    html = client.get(gate_url(gate)).content.decode()
    assert 'value="approve" class="button decision-approve" disabled' in html
    pending = page_text(client.get("/approvals/"))
    assert "1 of 2 approvals" in pending and "you approved" in pending
    assert "you approved" not in page_text(signed_in(other).get("/approvals/"))
    # A second approve posted anyway is the service's 409, shown on the page.
    again = client.post(
        gate_url(gate), {"approval_request_id": gate.pk, "decision": "approve", "reason": ""}
    )
    assert again.status_code == 409


def test_a_delegate_sees_for_whom_they_decide(operator, viewer, make_member):
    treasurer = make_member(
        "acme/ops", "tom-treasurer", role=Role.ADMIN, clearances=["financial_record"]
    )
    gate = review_gate(actor_for(operator), policy=GOVERNED)
    assert "You may not decide this gate." in page_text(signed_in(viewer).get(gate_url(gate)))
    delegation_create(
        actor=actor_for(treasurer),
        delegate=viewer.user.username,
        ends_at=timezone.now() + timedelta(days=1),
    )
    text = page_text(signed_in(viewer).get(gate_url(gate)))
    assert "You may decide this gate." in text
    assert "You decide for tom-treasurer" in text
    outcome = gate_decide(actor=actor_for(viewer), run=gate.run, decision="approve")
    assert outcome.record.on_behalf_of == treasurer.user


def test_a_delegation_to_the_requester_shows_no_approve(operator, make_member):
    treasurer = make_member(
        "acme/ops", "tom-treasurer", role=Role.ADMIN, clearances=["financial_record"]
    )
    gate = review_gate(actor_for(operator), policy=GOVERNED)
    delegation_create(
        actor=actor_for(treasurer),
        delegate=operator.user.username,
        ends_at=timezone.now() + timedelta(days=1),
    )
    text = page_text(signed_in(operator).get(gate_url(gate)))
    assert "Approve : You are accountable for this work and cannot approve it" in text
