"""The approval page of an approval request (issue 18): what was asked, the editable fields and
the response form, and deciding through them with the gates' one decision service."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from tests.factories import ask
from tests.support.pages import page_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {
        "channel": {"enum": ["sepa", "swift"], "title": "Payment channel"},
        "urgent": {"type": "boolean"},
        "note": {"type": "string", "description": "For the agent"},
        "fee": {"type": "number"},
    },
    "required": ["channel"],
}


def signed_in(member) -> Client:
    member.user.refresh_from_db()
    client = Client()
    client.force_login(member.user)
    return client


def page_url(asked) -> str:
    return reverse("approval_pages:gate", args=[asked["gate_id"]])


def test_the_page_shows_the_request_the_editable_fields_and_the_response_form(agent, reviewer):
    asked = ask(agent, response_schema=RESPONSE_SCHEMA)
    response = signed_in(reviewer).get(page_url(asked))
    assert response.status_code == 200
    html = response.content.decode()
    text = page_text(response)
    assert "payments.send" in text and "Pay invoice 42" in text
    assert "Invoice 42 from ACME, due Friday." in text
    assert 'href="https://billing.example.com/42"' in html
    assert '"iban": "DE00 1234"' in unescape(html)  # the proposed arguments
    assert 'name="edit.amount"' in html and 'value="100"' in html
    assert 'name="edit.memo"' in html and 'value="Invoice 42"' in html
    assert 'name="edit.payee.iban"' not in html
    assert 'name="response.channel"' in html and '<option value="&quot;sepa&quot;"' in html
    assert 'name="response.urgent"' in html and 'type="checkbox"' in html
    assert 'name="response.fee"' in html and 'type="number"' in html


def test_approve_on_the_page_with_an_edit_and_an_answer(agent, reviewer):
    asked = ask(agent, response_schema=RESPONSE_SCHEMA)
    client = signed_in(reviewer)
    response = client.post(
        page_url(asked),
        {
            "approval_request_id": asked["gate_id"],
            "decision": "approve",
            "reason": "",
            "edit.amount": "75",
            "edit.memo": "Invoice 42 (partial)",
            "response.channel": '"swift"',
            "response.urgent": "on",
            "response.note": "",
        },
    )
    assert response.status_code == 302, page_text(response)
    request = ApprovalRequest.objects.select_related("decision").get(pk=asked["request_id"])
    assert request.decision.source == "page"
    assert request.approved_arguments["amount"] == 75
    assert request.approved_arguments["memo"] == "Invoice 42 (partial)"
    assert request.response == {"channel": "swift", "urgent": True}
    assert sorted(change["path"] for change in request.diff) == ["amount", "memo"]
    shown = unescape(page_text(client.get(page_url(asked))))
    assert "Approved arguments (edited)" in shown and "amount : 100 → 75" in shown


def test_an_edit_against_the_schema_is_refused_on_the_page(agent, reviewer):
    asked = ask(agent)
    response = signed_in(reviewer).post(
        page_url(asked),
        {"approval_request_id": asked["gate_id"], "decision": "approve", "edit.amount": "9000"},
    )
    assert response.status_code == 400
    assert "do not satisfy the request's editable schema" in unescape(page_text(response))
    assert ApprovalRequest.objects.get(pk=asked["request_id"]).decision_id is None


def test_cancel_on_the_page_needs_no_answer(agent, reviewer):
    asked = ask(agent, response_schema=RESPONSE_SCHEMA)
    response = signed_in(reviewer).post(
        page_url(asked),
        {"approval_request_id": asked["gate_id"], "decision": "cancel", "confirm_cancel": "on"},
    )
    assert response.status_code == 302
    assert (
        agent.client().get(f"/api/approvals/requests/{asked['request_id']}").json()["status"]
        == "cancelled"
    )
