"""Chat decision assurance (issue 14): what a click may decide depends on who could forge it.

As first found on `main`: the workspace admin who configured a Slack connection knows its
signing secret; with it they forged a `block_actions` request as the linked reviewer's Slack
account and approved their *own* consequential gate, recorded as the reviewer's decision from
Slack. The same with a Telegram webhook secret. And a second workspace's connection with the
same Slack signing secret approved the first workspace's gate.

Now a click verified only by a `workspace`-assured connection may not approve a consequential
gate (it decides nothing, and the clicking account is sent the approval page privately); it
may still rework or cancel, and decide gates that are not consequential. A click through the
deployment's own Slack app (`platform`) decides as before. Secrets are unique across
workspaces.
"""

from __future__ import annotations

import pytest

from approvals.models import GateStatus
from approvals.policy import GatePolicy
from channels.interactions.telegram import PAGE_SENT
from channels.models import Assurance, ChannelConnection
from channels.secrets import secret_digest
from channels.services import connection_create
from governance.errors import InvalidRequest
from governance.models import Role
from tests.factories import actor_for, gate_for, link
from tests.support.interactions import (
    SLACK_SECRET,
    SLACK_TEAM,
    TELEGRAM_SECRET,
    decisions,
    denial_codes,
    slack_click,
    slack_post,
    telegram_post,
    telegram_press,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

CONSEQUENTIAL = {"risk_tier": "external_send"}
ASSURANCE = "AUTOMATION_V2_GATE_CHAT_ASSURANCE_INSUFFICIENT"


def ephemerals(chat_fakes) -> list[dict]:
    return [r.body for r in chat_fakes.slack.calls("chat.postEphemeral")]


def page_of(gate) -> str:
    return f"/approvals/{gate.pk}/"


# --- the findings, as first found -------------------------------------------------------------


def test_a_workspace_admins_forged_slack_approval_of_their_own_consequential_gate(
    chat_fakes, admin, reviewer
):
    gate = gate_for(admin, policy=CONSEQUENTIAL)  # the admin is the requester
    chat_fakes.connect(gate.workspace, kinds=["slack"])  # the admin entered its secret
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)

    # The admin signs a click as the reviewer's Slack account with the secret they know.
    response = slack_post(slack_click(gate.pk, "approve", user="U0RITA"), secret=SLACK_SECRET)

    assert response.status_code == 200
    gate.refresh_from_db()
    assert gate.status == GateStatus.OPEN
    assert decisions(gate) == []
    assert denial_codes(gate) == [ASSURANCE]
    [told] = ephemerals(chat_fakes)
    assert told["user"] == "U0RITA"  # privately, to the account that clicked
    assert page_of(gate) in told["text"]


def test_a_workspace_admins_forged_telegram_approval_of_their_own_consequential_gate(
    chat_fakes, admin, reviewer
):
    gate = gate_for(admin, policy=CONSEQUENTIAL)
    chat_fakes.connect(gate.workspace, kinds=["telegram"])
    link(reviewer, "telegram", "5000001")

    response = telegram_post(telegram_press(gate.pk, "approve"), secret=TELEGRAM_SECRET)

    assert decisions(gate) == []
    assert denial_codes(gate) == [ASSURANCE]
    sent = response.json()  # a sendMessage to the user's private chat with the bot
    assert (sent["method"], sent["chat_id"]) == ("sendMessage", "5000001")
    assert page_of(gate) in sent["text"]
    [(_, answer)] = [
        (r.body["callback_query_id"], r.body["text"])
        for r in chat_fakes.telegram.calls("answerCallbackQuery")
    ]
    assert answer == PAGE_SENT


def test_a_second_workspace_cannot_save_a_secret_the_first_uses(make_member, admin):
    """As first found, two tenants on one Slack app: the second's admin approved the first's
    gate. Now the second connection is refused at save, for Slack and Telegram alike."""
    first = actor_for(admin)
    other = actor_for(make_member("globex/main", "gina-admin", role=Role.ADMIN))
    slack = {"name": "a", "channel_id": "C1", "bot_token": "xoxb-1", "signing_secret": "s3cret"}
    telegram = {
        "name": "t",
        "channel_id": "-1",
        "bot_token": "1:abc",
        "signing_secret": "hook-secret",
    }
    for kind, data in (("slack", slack), ("telegram", telegram)):
        connection_create(actor=first, kind=kind, data=data)
        with pytest.raises(InvalidRequest) as refused:
            connection_create(actor=other, kind=kind, data={**data, "bot_token": "1:other"})
        assert refused.value.code == "CHANNEL_SECRET_IN_USE"
        assert "signing_secret" in refused.value.extra["fields"]
    assert not ChannelConnection.objects.filter(workspace=other.workspace).exists()
    # The same workspace may use its secret twice (two channels of one app).
    connection_create(actor=first, kind="slack", data={**slack, "name": "b", "channel_id": "C2"})


def test_the_secret_is_compared_by_a_keyed_digest(admin):
    connection = connection_create(
        actor=actor_for(admin),
        kind="slack",
        data={"name": "a", "channel_id": "C1", "bot_token": "x", "signing_secret": "s3cret"},
    )
    assert connection.secret_digest == secret_digest("slack", "s3cret")
    assert "s3cret" not in connection.secret_digest
    assert secret_digest("slack", "s3cret") != secret_digest("telegram", "s3cret")


def test_the_api_refuses_another_workspaces_secret_with_a_clear_400(make_member, admin):
    body = {"kind": "telegram", "name": "t", "channel_id": "-1", "bot_token": "1:a"}
    assert admin.client().post(
        "/api/channels/connections", {**body, "signing_secret": "hook"}, format="json"
    ).status_code in (200, 201)
    other = make_member("globex/main", "gina-admin", role=Role.ADMIN)
    response = other.client().post(
        "/api/channels/connections", {**body, "signing_secret": "hook"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "CHANNEL_SECRET_IN_USE"


# --- what a workspace-assured click may still decide ------------------------------------------


def test_the_same_click_on_a_gate_that_is_not_consequential_decides(chat_fakes, admin, reviewer):
    gate = gate_for(admin)
    assert not GatePolicy.of(gate.policy).consequential
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)

    slack_post(slack_click(gate.pk, "approve", user="U0RITA"))

    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]


def test_cancel_of_a_consequential_gate_through_a_workspace_connection_decides(
    chat_fakes, admin, reviewer
):
    gate = gate_for(admin, policy=CONSEQUENTIAL)
    chat_fakes.connect(gate.workspace, kinds=["telegram"])
    link(reviewer, "telegram", "5000001")

    telegram_post(telegram_press(gate.pk, "cancel"))

    assert [d[:3] for d in decisions(gate)] == [("cancel", "telegram", "rita-reviewer")]


# --- the deployment's own Slack app -----------------------------------------------------------


def test_a_deployment_slack_app_click_decides_a_consequential_gate_for_a_proven_reviewer(
    chat_fakes, operator, reviewer, deployment_slack_app
):
    gate = gate_for(operator, policy=CONSEQUENTIAL)
    [slack] = chat_fakes.connect(gate.workspace, kinds=["slack"], slack_app=True).values()
    assert (slack.signing_secret, slack.assurance) == ("", Assurance.PLATFORM)
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)

    slack_post(slack_click(gate.pk, "approve", user="U0RITA"), secret=deployment_slack_app)

    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]


def test_a_slack_connection_without_a_secret_needs_the_deployment_app(admin, settings):
    body = {"kind": "slack", "name": "a", "channel_id": "C1", "bot_token": "xoxb-1"}
    settings.FLOWGATE_SLACK_SIGNING_SECRET = ""
    response = admin.client().post("/api/channels/connections", body, format="json")
    assert response.status_code == 400
    assert "FLOWGATE_SLACK_SIGNING_SECRET" in str(response.json()["fields"]["signing_secret"])

    settings.FLOWGATE_SLACK_SIGNING_SECRET = "the-operators-secret"
    response = admin.client().post("/api/channels/connections", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["assurance"] == "platform"
    # Nobody may enter the deployment app's secret as their own.
    response = admin.client().post(
        "/api/channels/connections",
        {**body, "name": "b", "signing_secret": "the-operators-secret"},
        format="json",
    )
    assert response.json()["code"] == "CHANNEL_SECRET_IN_USE"


def test_assurance_of_each_kind(chat_fakes, admin):
    connections = chat_fakes.connect(admin.workspace)
    assert {kind: c.assurance for kind, c in connections.items()} == {
        "slack": "workspace",
        "discord": "platform",
        "telegram": "workspace",
    }
