"""Attacks on Slack's approve modal for approval requests (`channels.interactions.slack`,
`slack_approve_form`, `approvals.request_form_values`) that got through: each test reproduces a
finding and states what must hold instead.

1. A request whose editable paths nest (`payee` and `payee.iban`, which `editable` accepts) makes
   the modal's submission fail with a 500 when the reviewer changes both (the outer one to a
   value that is not an object): the form's values are read into edits before any check.
2. A request whose `response_schema` refers (`$ref`) to something that does not resolve passes
   the schema check when it is made and is asked in the modal (its properties look simple), then
   every submission of the modal fails with a 500 instead of an answer the user can act on.
3. JSON typed into an edit that the API's own parser refuses (nested 900 or 1500 deep — a
   3000-character input holds it —, `"\\u0000"`, `"\\ud800"`, `1e400`) fails the submission
   with a 500 (a RecursionError, or PostgreSQL refusing the stored value).
"""

from __future__ import annotations

import json

import pytest

from approvals.models import ApprovalRequest, Gate, GateDecision
from tests.channels.conftest import chat_fakes, deployment_slack_app  # noqa: F401 (fixtures)
from tests.factories import ask, link
from tests.support.interactions import (
    SLACK_TEAM,
    slack_click,
    slack_post,
    slack_view_submission,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def slack(chat_fakes, agent, deployment_slack_app):  # noqa: F811
    """The workspace's Slack connection through the deployment's app (`platform` assurance)."""
    return chat_fakes.connect(agent.workspace, kinds=["slack"], slack_app=True)["slack"]


@pytest.fixture
def rita(reviewer, slack):
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM, name="rita")
    return reviewer


def open_form(chat_fakes, asked: dict) -> dict:  # noqa: F811
    """Click Approve on the request's card as Rita; the one modal that opened."""
    click = slack_click(asked["gate_id"], "approve", user="U0RITA", ts="1.0001")
    assert slack_post(click).status_code == 200
    [view] = [r.body["view"] for r in chat_fakes.slack.calls("views.open")]
    return json.loads(view) if isinstance(view, str) else view


def text_input(value: str) -> dict:
    return {"type": "plain_text_input", "value": value}


def settled(asked: dict) -> bool:
    return GateDecision.objects.filter(gate_id=asked["gate_id"], settles=True).exists()


def test_nested_editable_paths_edited_together_are_answered_not_a_500(
    chat_fakes,  # noqa: F811
    agent,
    rita,
):
    asked = ask(agent, editable={"paths": ["payee", "payee.iban"]})
    view = open_form(chat_fakes, asked)
    blocks = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert blocks == ["edit.payee", "edit.payee.iban"]
    values = {
        "edit.payee": {"edit.payee": text_input('"DE99 0000"')},  # the whole payee, as a string
        "edit.payee.iban": {"edit.payee.iban": text_input("DE77 0000")},
    }

    response = slack_post(slack_view_submission(view, values, view_id="V1", user="U0RITA"))

    assert response.status_code == 200
    assert response.json()["response_action"] in ("errors", "update", "clear"), response.json()
    approved = ApprovalRequest.objects.get(pk=asked["request_id"]).approved_arguments
    # Whatever the answer, what was approved (if anything) is one of the values Rita typed.
    assert approved is None or approved["payee"] in ("DE99 0000", {"iban": "DE77 0000"})


def test_a_response_schema_that_cannot_be_applied_is_answered_not_a_500(
    chat_fakes,  # noqa: F811
    agent,
    rita,
):
    answer = {
        "type": "object",
        "properties": {"channel": {"type": "string", "$ref": "#/$defs/channel"}},
        "required": ["channel"],
    }
    asked = ask(agent, response_schema=answer, editable=None)
    view = open_form(chat_fakes, asked)
    values = {"response.channel": {"response.channel": text_input("sepa")}}

    response = slack_post(slack_view_submission(view, values, view_id="V1", user="U0RITA"))

    assert response.status_code == 200
    assert response.json()["response_action"] in ("errors", "update"), response.json()
    assert not settled(asked)
    assert Gate.objects.get(pk=asked["gate_id"]).status == "open"


UNCONSTRAINED = {"paths": ["amount", "memo"]}  # no editable schema: any value may be approved


@pytest.mark.parametrize(
    ("typed", "editable"),
    [
        ("[" * 1500 + "]" * 1500, None),  # Python's decoder gives up: RecursionError
        ("[" * 900 + "]" * 900, UNCONSTRAINED),  # decoded, too deep to encode: RecursionError
        ('"\\u0000"', UNCONSTRAINED),  # decoded to a NUL, which PostgreSQL's jsonb refuses
        ('"\\ud800"', UNCONSTRAINED),  # an unpaired surrogate, which cannot be encoded
        ("1e400", UNCONSTRAINED),  # decoded to infinity, which JSON cannot hold
    ],
    ids=["too-deep-to-decode", "too-deep-to-encode", "nul", "lone-surrogate", "infinity"],
)
def test_json_typed_into_an_edit_that_cannot_be_stored_is_answered_not_a_500(
    chat_fakes,  # noqa: F811
    agent,
    rita,
    typed,
    editable,
):
    """A plain text input holds up to 3000 characters, read as JSON for a value that is not a
    string: JSON the API's parser refuses (`governance.api.parsers`) must not get through a
    form either. Such text is kept as text, which the editable schema (if any) judges."""
    asked = ask(agent) if editable is None else ask(agent, editable=editable)
    view = open_form(chat_fakes, asked)
    values = {
        "edit.amount": {"edit.amount": text_input(typed)},
        "edit.memo": {"edit.memo": text_input("Invoice 42")},
    }

    response = slack_post(slack_view_submission(view, values, view_id="V1", user="U0RITA"))

    assert response.status_code == 200
    if editable is None:  # the request's editable schema: amount is an integer
        assert response.json()["response_action"] == "errors", response.json()
        assert "edit.amount" in response.json()["errors"]
        assert not settled(asked)
    else:  # no schema: the text is what Rita approved
        assert response.json()["response_action"] == "update", response.json()
        approved = ApprovalRequest.objects.get(pk=asked["request_id"]).approved_arguments
        assert approved["amount"] == typed
