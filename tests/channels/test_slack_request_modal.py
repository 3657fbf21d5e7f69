"""Slack's approve modal for approval requests (issue 18): Approve on the card of a request with
editable fields or a simple response form opens a modal (`views.open` on the Slack stand-in)
holding the proposed values and the response inputs; its submission approves with the edits
and the answer through the one decision service. Values the service refuses come back as inline
errors with nothing written, so the same form can be corrected and submitted again."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from approvals.models import ApprovalRequest, Gate
from automations.services import grant_add
from governance.models import AuditEvent
from tests.factories import actor_for, ask, link, new_automation
from tests.support.interactions import (
    SLACK_TEAM,
    decisions,
    denial_codes,
    discord_click,
    discord_post,
    public_hex,
    slack_click,
    slack_post,
    slack_view_submission,
    snapshot,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

ANSWER = {  # a simple response schema: one input per property
    "type": "object",
    "properties": {
        "channel": {"enum": ["sepa", "swift"], "title": "Payment channel"},
        "urgent": {"type": "boolean"},
        "fee": {"type": "number", "minimum": 0, "description": "In EUR"},
        "count": {"type": "integer", "minimum": 1},
        "note": {"type": "string"},
    },
    "required": ["channel", "count"],
}
SELF_APPROVAL = "AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"
ASSURANCE = "AUTOMATION_V2_GATE_CHAT_ASSURANCE_INSUFFICIENT"


@pytest.fixture
def slack(chat_fakes, agent, deployment_slack_app):
    """The workspace's Slack connection through the deployment's app (`platform` assurance:
    every approval request is consequential, and only such a click may approve one)."""
    return chat_fakes.connect(agent.workspace, kinds=["slack"], slack_app=True)["slack"]


@pytest.fixture
def rita(reviewer, slack):
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM, name="rita")
    return reviewer


def gate_of(asked: dict) -> Gate:
    return Gate.objects.select_related("run").get(pk=asked["gate_id"])


def opened_views(chat_fakes) -> list[dict]:
    """The modals slack-sdk sent to the stand-in's `views.open` (form-encoded: JSON strings)."""
    views = [r.body["view"] for r in chat_fakes.slack.calls("views.open")]
    return [json.loads(view) if isinstance(view, str) else view for view in views]


def open_form(chat_fakes, asked: dict, *, user="U0RITA", ts="1.0001") -> dict:
    """Click Approve on the request's card; the one modal that opened."""
    assert slack_post(slack_click(asked["gate_id"], "approve", user=user, ts=ts)).status_code == 200
    [view] = opened_views(chat_fakes)
    return view


def inputs(view: dict) -> dict[str, dict]:
    return {block["block_id"]: block for block in view["blocks"] if block["type"] == "input"}


def state(view: dict, changes: dict | None = None) -> dict:
    """`view.state.values` as Slack sends it on submit: every input as the view set it up,
    then what the user did (`changes`: block id -> the element's new state)."""
    start = {
        "plain_text_input": lambda element: {"value": element.get("initial_value")},
        "number_input": lambda element: {"value": None},
        "static_select": lambda element: {"selected_option": None},
        "checkboxes": lambda element: {"selected_options": []},
    }
    values = {}
    for block_id, block in inputs(view).items():
        element = block["element"]
        values[block_id] = {
            element["action_id"]: {"type": element["type"], **start[element["type"]](element)}
        }
    for block_id, change in (changes or {}).items():
        values[block_id][block_id].update(change)
    return values


def typed(text: str | None) -> dict:
    return {"value": text}


def picked(view: dict, block_id: str, shown: str) -> dict:
    """The option of a select the user picked by the text it shows."""
    [option] = [
        o for o in inputs(view)[block_id]["element"]["options"] if o["text"]["text"] == shown
    ]
    return {"selected_option": option}


def ticked(view: dict, block_id: str) -> dict:
    return {"selected_options": inputs(view)[block_id]["element"]["options"]}


def submit(view: dict, changes: dict | None = None, *, view_id="V1", user="U0RITA"):
    payload = slack_view_submission(view, state(view, changes), view_id=view_id, user=user)
    return slack_post(payload)


def modal_text(response) -> str:
    body = response.json()
    assert body["response_action"] == "update", body
    return " ".join(block["text"]["text"] for block in body["view"]["blocks"])


def test_approve_opens_the_form_with_the_proposed_values_and_the_response_inputs(
    chat_fakes, agent, rita
):
    asked = ask(agent, response_schema=ANSWER)

    view = open_form(chat_fakes, asked)

    [opened] = chat_fakes.slack.calls("views.open")
    assert opened.body["trigger_id"] == "trigger-1.0001"
    assert view["callback_id"] == "fg_approve"
    assert json.loads(view["private_metadata"]) == {"gate": asked["gate_id"]}
    assert "payments.send: Pay invoice 42" in view["blocks"][0]["text"]["text"]
    blocks = inputs(view)
    # The editable paths (not payee.iban), then the response properties (in the order the
    # stored schema has them: PostgreSQL's jsonb keeps no key order).
    assert list(blocks)[:2] == ["edit.amount", "edit.memo"]
    assert set(list(blocks)[2:]) == {
        "response.channel",
        "response.urgent",
        "response.fee",
        "response.count",
        "response.note",
    }
    amount, memo = blocks["edit.amount"], blocks["edit.memo"]
    assert (amount["element"]["type"], amount["element"]["initial_value"]) == (
        "plain_text_input",
        "100",  # a number as JSON
    )
    assert memo["element"]["initial_value"] == "Invoice 42"  # a string as it is
    assert amount["optional"] and memo["optional"]  # left as they are: approved as asked
    channel = blocks["response.channel"]
    assert channel["label"]["text"] == "Payment channel" and not channel["optional"]
    assert channel["element"]["type"] == "static_select"
    assert [(o["text"]["text"], o["value"]) for o in channel["element"]["options"]] == [
        ("sepa", '"sepa"'),
        ("swift", '"swift"'),
    ]
    assert blocks["response.urgent"]["element"]["type"] == "checkboxes"
    assert blocks["response.urgent"]["optional"]  # unticked answers false
    fee, count = blocks["response.fee"], blocks["response.count"]
    assert (fee["element"]["type"], fee["element"]["is_decimal_allowed"]) == ("number_input", True)
    assert fee["optional"] and fee["hint"]["text"] == "In EUR"
    assert (count["element"]["type"], count["element"]["is_decimal_allowed"]) == (
        "number_input",
        False,
    )
    assert not count["optional"]  # required: Slack asks for it before submitting
    assert blocks["response.note"]["element"]["type"] == "plain_text_input"
    assert blocks["response.note"]["optional"]
    # Nothing is decided and nothing is said before the form is submitted.
    assert decisions(gate_of(asked)) == []
    assert chat_fakes.slack.calls("chat.postEphemeral") == []


def test_an_edit_of_an_editable_field_approves_the_edited_arguments(chat_fakes, agent, rita):
    asked = ask(agent)  # amount and memo editable, no response asked
    gate = gate_of(asked)
    view = open_form(chat_fakes, asked)
    assert set(inputs(view)) == {"edit.amount", "edit.memo"}

    response = submit(view, {"edit.amount": typed("90")})

    assert modal_text(response).startswith("Approved: ")
    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.approved_arguments == {**asked["arguments"], "amount": 90}
    assert request.diff == [{"path": "amount", "op": "replace", "from": 100, "to": 90}]
    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]
    decided = AuditEvent.objects.get(event_type="automation.governance.gate_decided")
    assert decided.payload["decidedBy"]["source"] == "slack"
    assert decided.payload["approvalRequest"]["edited"] is True
    assert decided.payload["approvalRequest"]["diff"] == request.diff


def test_an_unchanged_form_approves_the_proposed_arguments(chat_fakes, agent, rita):
    asked = ask(agent)
    view = open_form(chat_fakes, asked)

    assert modal_text(submit(view)).startswith("Approved: ")

    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.approved_arguments == asked["arguments"] and request.diff == []


def test_an_edit_against_the_editable_schema_is_an_inline_error_and_can_be_corrected(
    chat_fakes, agent, rita
):
    asked = ask(agent)  # amount: an integer from 1 to 500
    gate = gate_of(asked)
    view = open_form(chat_fakes, asked)
    before = snapshot(gate)

    too_much = submit(view, {"edit.amount": typed("9000")})
    not_a_number = submit(view, {"edit.amount": typed("ninety")})

    assert too_much.json() == {
        "response_action": "errors",
        "errors": {"edit.amount": "9000 is greater than the maximum of 500"},
    }
    assert not_a_number.json() == {
        "response_action": "errors",
        "errors": {"edit.amount": "'ninety' is not of type 'integer'"},
    }
    # Nothing decided, audited or claimed: the same view is submitted again, corrected.
    assert snapshot(gate) == before
    corrected = submit(view, {"edit.amount": typed("450")})
    assert modal_text(corrected).startswith("Approved: ")
    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.approved_arguments["amount"] == 450
    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]


def test_a_response_is_validated_and_returned_with_each_input_mapped_to_its_type(
    chat_fakes, agent, rita
):
    asked = ask(agent, editable=None, response_schema=ANSWER)
    gate = gate_of(asked)
    view = open_form(chat_fakes, asked)
    assert not [block for block in inputs(view) if block.startswith("edit.")]
    answer = {
        "response.channel": picked(view, "response.channel", "swift"),
        "response.urgent": ticked(view, "response.urgent"),
        "response.fee": typed("12.5"),
        "response.note": typed(None),  # left empty: left out
    }

    refused = submit(view, {**answer, "response.count": typed("0")})
    forged = picked(view, "response.channel", "swift")
    forged["selected_option"] = {**forged["selected_option"], "value": '"pigeon"'}
    not_an_option = submit(
        view, {**answer, "response.count": typed("2"), "response.channel": forged}
    )

    assert refused.json() == {
        "response_action": "errors",
        "errors": {"response.count": "0 is less than the minimum of 1"},
    }
    assert not_an_option.json()["errors"] == {
        "response.channel": "'pigeon' is not one of ['sepa', 'swift']"
    }
    assert decisions(gate) == []
    accepted = submit(view, {**answer, "response.count": typed("3")})
    assert modal_text(accepted).startswith("Approved: ")
    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.response == {"channel": "swift", "urgent": True, "fee": 12.5, "count": 3}
    assert type(request.response["count"]) is int  # an integer input answers an integer
    assert request.approved_arguments == asked["arguments"]


def test_an_unticked_box_answers_false_and_a_whole_number_is_a_number(chat_fakes, agent, rita):
    schema = {
        "type": "object",
        "properties": {"urgent": {"type": "boolean"}, "fee": {"type": "number"}},
        "required": ["urgent", "fee"],
    }
    asked = ask(agent, editable=None, response_schema=schema)
    view = open_form(chat_fakes, asked)

    assert modal_text(submit(view, {"response.fee": typed("7")})).startswith("Approved: ")

    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.response == {"urgent": False, "fee": 7.0}


def test_the_requesting_agents_grantor_cannot_approve_through_the_form(
    chat_fakes, agent, admin, slack
):
    automation = new_automation(actor_for(admin), "payments")
    grant_add(
        actor=actor_for(admin), automation=automation, permission="operate", username="bot-agent"
    )
    link(admin, "slack", "U0ADA", team_id=SLACK_TEAM, name="ada")
    asked = ask(agent)
    gate = gate_of(asked)
    view = open_form(chat_fakes, asked, user="U0ADA")

    response = submit(view, {"edit.amount": typed("90")}, user="U0ADA")

    assert modal_text(response) == "You cannot approve your own request."
    assert decisions(gate) == []
    assert denial_codes(gate) == [SELF_APPROVAL]
    assert ApprovalRequest.objects.get(pk=asked["request_id"]).approved_arguments is None


def test_a_replayed_submission_changes_nothing(chat_fakes, agent, rita):
    asked = ask(agent)
    gate = gate_of(asked)
    view = open_form(chat_fakes, asked)
    payload = slack_view_submission(view, state(view, {"edit.amount": typed("90")}))
    slack_post(payload)
    after = snapshot(gate)

    replayed = slack_post(payload)
    other = slack_post(slack_view_submission(view, state(view, {"edit.amount": typed("80")})))

    assert replayed.json() == other.json() == {"response_action": "clear"}
    assert snapshot(gate) == after
    assert ApprovalRequest.objects.get(pk=asked["request_id"]).approved_arguments["amount"] == 90


def test_the_form_opens_only_for_a_linked_account(chat_fakes, agent, reviewer, slack):
    asked = ask(agent)

    slack_post(slack_click(asked["gate_id"], "approve", ts="1.0001"))

    assert opened_views(chat_fakes) == []
    [told] = [r.body for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert "is not linked to Flowgate" in told["text"] and "/channels/link/" in told["text"]
    assert decisions(gate_of(asked)) == []
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)
    assert inputs(open_form(chat_fakes, asked, ts="1.0002"))


def test_only_a_simple_response_schema_is_asked_in_slack(chat_fakes, agent, rita):
    """A response schema the modal cannot ask (a list here) is answered on the approval page:
    the click sends the page, as before; a simple one opens the form."""
    listed = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
    }
    on_the_page = ask(agent, response_schema=listed, summary="Tag invoice 42")
    in_slack = ask(agent, response_schema=ANSWER)

    slack_post(slack_click(on_the_page["gate_id"], "approve", ts="1.0001"))
    slack_post(slack_click(in_slack["gate_id"], "approve", ts="1.0002"))

    [view] = opened_views(chat_fakes)
    assert json.loads(view["private_metadata"]) == {"gate": in_slack["gate_id"]}
    [told] = [r.body["text"] for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert "asks for an answer" in told and on_the_page["url"] in told
    assert decisions(gate_of(on_the_page)) == []


def test_a_connection_that_cannot_prove_who_clicked_gets_the_page_not_the_form(
    chat_fakes, agent, reviewer
):
    """A Slack connection with a signing secret a workspace admin entered (`workspace`
    assurance) may not approve a request (always consequential): the click is refused at once
    and sent the page, and a submission forged with that secret approves nothing either."""
    chat_fakes.connect(agent.workspace, kinds=["slack"])
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)
    asked = ask(agent)
    gate = gate_of(asked)

    slack_post(slack_click(asked["gate_id"], "approve"))
    forged = {
        "callback_id": "fg_approve",
        "private_metadata": json.dumps({"gate": asked["gate_id"]}),
    }
    values = {"edit.amount": {"edit.amount": {"type": "plain_text_input", "value": "90"}}}
    response = slack_post(slack_view_submission(forged, values, view_id="V9"))

    assert opened_views(chat_fakes) == []
    [told] = [r.body["text"] for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert "cannot prove who clicked" in told and asked["url"] in told
    said = modal_text(response)
    assert "cannot prove who clicked" in said and asked["url"] in said
    assert decisions(gate) == []
    assert denial_codes(gate) == [ASSURANCE, ASSURANCE]


def test_other_platforms_approve_an_editable_request_as_proposed(chat_fakes, agent, rita):
    """Discord has no form for edits: its Approve approves the proposed arguments (edits are
    made on the page), while Slack's asks for them first."""
    key = Ed25519PrivateKey.generate()
    discord = chat_fakes.connect(agent.workspace, kinds=["discord"])["discord"]
    discord.public_key = public_hex(key)
    discord.save(update_fields=["public_key"])
    link(rita, "discord", "2000000000000000001")
    asked = ask(agent)
    gate = gate_of(asked)

    open_form(chat_fakes, asked)
    assert decisions(gate) == []
    discord_post(discord_click(asked["gate_id"], "approve"), key)

    assert decisions(gate) == [("approve", "discord", "rita-reviewer", "")]
    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.approved_arguments == asked["arguments"] and request.diff == []


def test_when_slack_does_not_take_the_form_the_user_is_told_to_press_again(chat_fakes, agent, rita):
    chat_fakes.slack.fail_next(1, status=500, retry_after=None, call="views.open")
    asked = ask(agent)

    assert slack_post(slack_click(asked["gate_id"], "approve")).status_code == 200

    [told] = [r.body["text"] for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert told == (
        "The approval form could not be opened in time, so nothing was decided: "
        "press Approve again."
    )
    assert decisions(gate_of(asked)) == []


def test_a_form_too_large_for_slack_is_left_to_the_page(chat_fakes, agent, rita):
    memo = "Invoice 42, " * 300  # 3,600 characters: more than a Slack text input holds
    asked = ask(agent, arguments={"amount": 100, "memo": memo, "payee": {"iban": "DE00 1234"}})

    slack_post(slack_click(asked["gate_id"], "approve"))

    assert opened_views(chat_fakes) == []
    [told] = [r.body["text"] for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert "too large for Slack" in told and asked["url"] in told
    assert decisions(gate_of(asked)) == []
