"""Deciding an approval request from chat (issue 18): a Slack click on a request with nothing
to edit or answer decides it like any gate (the proposed arguments are approved as they are); a
request that asks for an answer Slack's modal cannot ask (not a simple schema) is not decided
by a click: the clicking account is sent the approval page, where the form is. Slack's approve
modal (edits and simple answers) is tested in test_slack_request_modal.py."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest, Gate
from tests.factories import ask, link
from tests.support.interactions import SLACK_TEAM, decisions, slack_click, slack_post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def test_a_slack_click_approves_the_proposed_arguments(
    chat_fakes, agent, reviewer, deployment_slack_app
):
    asked = ask(agent, editable=None)
    gate = Gate.objects.get(pk=asked["gate_id"])
    chat_fakes.connect(gate.workspace, kinds=["slack"], slack_app=True)
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)

    slack_post(slack_click(gate.pk, "approve", user="U0RITA"), secret=deployment_slack_app)

    assert chat_fakes.slack.calls("views.open") == []
    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]
    request = ApprovalRequest.objects.get(pk=asked["request_id"])
    assert request.approved_arguments == asked["arguments"] and request.diff == []


def test_a_request_asking_for_an_answer_sends_the_clicker_to_the_page(
    chat_fakes, agent, reviewer, deployment_slack_app
):
    # A list property: more than Slack's modal asks (the page takes it as JSON).
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["tags"],
    }
    asked = ask(agent, response_schema=schema)
    gate = Gate.objects.get(pk=asked["gate_id"])
    chat_fakes.connect(gate.workspace, kinds=["slack"], slack_app=True)
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)

    slack_post(slack_click(gate.pk, "approve", user="U0RITA"), secret=deployment_slack_app)

    assert chat_fakes.slack.calls("views.open") == []
    assert [d for d in decisions(gate) if d[0] == "approve"] == []
    (ephemeral,) = [r.body for r in chat_fakes.slack.calls("chat.postEphemeral")]
    assert "asks for an answer" in str(ephemeral) and asked["url"] in str(ephemeral)
