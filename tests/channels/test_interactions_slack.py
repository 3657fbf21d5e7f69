"""`POST /channels/slack/interactions`: signed requests as Slack sends them, answered through the
local Slack stand-in (`chat_fakes`), decided by the one decision service."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations.models import RunStatus
from channels.models import ApprovalMessage, ChatIdentity, MessageState
from governance.models import AuditEvent
from tests.factories import actor_for, gate_for, link, reopen
from tests.support.interactions import (
    SLACK_TEAM,
    decisions,
    denial_codes,
    slack_click,
    slack_post,
    slack_submission,
    snapshot,
)
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

GOVERNED = {"risk_tier": "external_send"}  # consequential: the requester may not approve


@pytest.fixture
def gate(operator):
    return gate_for(operator)


@pytest.fixture
def slack(chat_fakes, gate):
    return chat_fakes.connect(gate.workspace, kinds=["slack"])["slack"]


@pytest.fixture
def rita(reviewer):
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM, name="rita")
    return reviewer


def ephemerals(chat_fakes) -> list[dict]:
    return [r.body for r in chat_fakes.slack.calls("chat.postEphemeral")]


def opened_view(recorded) -> dict:
    """The modal slack-sdk sent to `views.open` (form-encoded, so the view is a JSON string)."""
    view = recorded.body["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_approve_by_a_linked_reviewer_applies(chat_fakes, slack, gate, rita):
    response = slack_post(slack_click(gate.pk, "approve"))

    assert response.status_code == 200
    gate.refresh_from_db()
    gate.run.refresh_from_db()
    assert gate.status == GateStatus.DECIDED
    assert gate.run.status == RunStatus.QUEUED  # left awaiting_approval
    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]
    event = AuditEvent.objects.get(event_type="automation.governance.gate_decided")
    assert event.payload["decidedBy"] == {
        "kind": "human",
        "actor_id": "rita-reviewer",
        "source": "slack",
        "chat_identity_id": ChatIdentity.objects.get(external_user_id="U0RITA").pk,
    }
    [told] = ephemerals(chat_fakes)
    assert (told["channel"], told["user"]) == ("C0FLOWGATE", "U0RITA")
    assert told["text"].startswith("Approved: “Weekly-Report: ")


def test_a_forged_signature_changes_nothing(chat_fakes, slack, gate, rita):
    before = snapshot(gate)
    response = slack_post(slack_click(gate.pk, "approve"), secret="not-the-secret")
    assert response.status_code == 401
    assert snapshot(gate) == before
    assert chat_fakes.slack.requests == []


def test_an_expired_timestamp_changes_nothing(chat_fakes, slack, gate, rita):
    before = snapshot(gate)
    six_minutes_ago = int(time.time()) - 360
    response = slack_post(slack_click(gate.pk, "approve"), timestamp=six_minutes_ago)
    assert response.status_code == 401
    assert snapshot(gate) == before


def test_a_missing_or_malformed_signature_is_refused(slack, gate, rita):
    before = snapshot(gate)
    assert slack_post(slack_click(gate.pk, "approve"), signature="v0=00").status_code == 401
    assert slack_post(slack_click(gate.pk, "approve"), timestamp="soon").status_code == 401
    assert snapshot(gate) == before


@pytest.mark.parametrize(
    "stamp",
    ["\u00b2", "\u0661\u0662\u0663", "9" * 5000, "-1", " 1"],
    ids=["superscript", "arabic-indic", "5000-digits", "negative", "blank"],
)
def test_an_odd_timestamp_header_is_401_and_writes_nothing(slack, gate, rita, stamp):
    """Unicode digits ("²" passes `str.isdigit()` but not int()), digits past int()'s conversion
    limit, signs and blanks: unverifiable, so 401, never a 500."""
    before = snapshot(gate)
    payload = slack_click(gate.pk, "approve")
    response = slack_post(payload, timestamp=stamp, signature="v0=" + "0" * 64)
    assert response.status_code == 401
    assert snapshot(gate) == before


def test_a_secret_the_verifier_refuses_does_not_verify(slack, gate, rita):
    """slack-sdk's verifier raises ValueError for a blank secret: that connection verifies
    nothing (401), it does not break the endpoint."""
    slack.signing_secret = "   "
    slack.save(update_fields=["signing_secret"])
    before = snapshot(gate)
    assert slack_post(slack_click(gate.pk, "approve"), secret="   ").status_code == 401
    assert snapshot(gate) == before


def test_another_teams_secret_does_not_verify(chat_fakes, slack, gate, rita):
    """The secret is looked up by the payload's team: a request claiming another team is not
    verified by this team's secret."""
    response = slack_post(slack_click(gate.pk, "approve", team="T0OTHER"))
    assert response.status_code == 401


def test_a_replayed_delivery_changes_nothing(chat_fakes, slack, gate, rita):
    payload = slack_click(gate.pk, "approve")
    stamp = int(time.time())
    assert slack_post(payload, timestamp=stamp).status_code == 200
    after_first = snapshot(gate)

    assert slack_post(payload, timestamp=stamp).status_code == 200  # Slack's retry, or a replay

    assert snapshot(gate) == after_first
    assert len(ephemerals(chat_fakes)) == 1


def test_an_unlinked_user_is_refused_and_told_how_to_link(chat_fakes, slack, gate, reviewer):
    response = slack_post(slack_click(gate.pk, "approve", user="U0STRANGER"))

    assert response.status_code == 200
    assert decisions(gate) == []
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"]
    [told] = ephemerals(chat_fakes)
    assert told["user"] == "U0STRANGER"
    assert told["text"].startswith(
        "Your Slack account is not linked to Flowgate: http://127.0.0.1:8000/channels/link/"
    )


def test_the_requester_cannot_approve_their_own_consequential_gate(
    chat_fakes, admin, deployment_slack_app
):
    """Through the deployment's Slack app (a click that could decide a consequential gate), the
    self-approval rule refuses the requester."""
    gate = gate_for(admin, policy=GOVERNED)
    chat_fakes.connect(gate.workspace, kinds=["slack"], slack_app=True)
    link(admin, "slack", "U0ADA", team_id=SLACK_TEAM)

    response = slack_post(slack_click(gate.pk, "approve", user="U0ADA"))

    assert response.status_code == 200
    gate.refresh_from_db()
    assert gate.status == GateStatus.OPEN
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_SELF_APPROVAL_FORBIDDEN"]
    assert [e["text"] for e in ephemerals(chat_fakes)] == ["You cannot approve your own request."]


def test_a_stale_card_cannot_decide_the_current_opening(chat_fakes, slack, gate, rita, reviewer):
    gate_decide(
        actor=actor_for(reviewer), run=gate.run, decision="rework", reason="tighten the intro"
    )
    current = reopen(gate)
    assert current.round == 2

    response = slack_post(slack_click(gate.pk, "approve"))

    assert response.status_code == 200
    current.refresh_from_db()
    assert current.status == GateStatus.OPEN
    assert decisions(current) == []
    [told] = ephemerals(chat_fakes)
    assert told["text"].startswith("Already sent back for rework by rita-reviewer via the API at ")


def test_an_already_decided_gate_says_who_decided_where(chat_fakes, slack, gate, rita, admin):
    gate_decide(actor=actor_for(admin), run=gate.run, decision="approve", source="page")

    slack_post(slack_click(gate.pk, "cancel"))

    assert decisions(gate) == [("approve", "page", "ada-admin", "")]
    [told] = ephemerals(chat_fakes)
    assert told["text"].startswith("Already approved by ada-admin via the approval page at ")


def test_a_gate_of_a_workspace_without_this_connection_is_unknown(
    chat_fakes, rita, operator, outsider
):
    """Connections verify only for their own workspace: a button naming another workspace's
    gate decides nothing there."""
    theirs = gate_for(outsider, automation_id="globex-report")
    ours = gate_for(operator, automation_id="acme-report")
    chat_fakes.connect(ours.workspace, kinds=["slack"])

    slack_post(slack_click(theirs.pk, "cancel"))

    theirs.refresh_from_db()
    assert theirs.status == GateStatus.OPEN
    assert [e["text"] for e in ephemerals(chat_fakes)] == ["This approval no longer exists."]


def test_rework_opens_the_modal_and_the_submission_records_the_reason(
    chat_fakes, slack, gate, rita
):
    assert slack_post(slack_click(gate.pk, "rework")).status_code == 200

    [opened] = chat_fakes.slack.calls("views.open")
    view = opened_view(opened)
    assert opened.body["trigger_id"] == "trigger-1.0001"
    assert json.loads(view["private_metadata"]) == {"gate": gate.pk}  # all the form needs
    assert decisions(gate) == []  # nothing decided before the reason arrives

    response = slack_post(slack_submission(view, "  Cite the Q3 numbers  "))

    assert response.status_code == 200
    assert response.json()["response_action"] == "update"
    assert "sent back for rework" in json.dumps(response.json()).lower()
    assert decisions(gate) == [("rework", "slack", "rita-reviewer", "Cite the Q3 numbers")]


def test_a_rework_submission_without_a_reason_is_an_inline_error(chat_fakes, slack, gate, rita):
    slack_post(slack_click(gate.pk, "rework"))
    view = opened_view(chat_fakes.slack.calls("views.open")[0])

    response = slack_post(slack_submission(view, "   "))

    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "Say what should change: a rework needs a reason."},
    }
    assert decisions(gate) == []
    # Nothing was claimed: the same form can be submitted again with a reason.
    slack_post(slack_submission(view, "Shorter, please"))
    assert decisions(gate) == [("rework", "slack", "rita-reviewer", "Shorter, please")]


def test_signed_but_unusable_requests_answer_200_with_words_and_decide_nothing(
    chat_fakes, slack, gate, rita, outsider
):
    """Only an unverifiable request is an HTTP error: a signed one that decides nothing is a 200
    (Slack would show the user an error otherwise) and the clicking user is told why."""
    theirs = gate_for(outsider, automation_id="globex-report")
    unknown = slack_click(gate.pk, "approve", ts="1.0002")
    unknown["actions"][0]["value"] = f"fg:frobnicate:{gate.pk}"
    clicks = [
        unknown,
        slack_click("no-such-gate", "approve", ts="1.0003"),
        slack_click(theirs.pk, "cancel", ts="1.0004"),
    ]
    for click in clicks:
        assert slack_post(click).status_code == 200
    for form in ({"payload": "{not json"}, {"x": "1"}):
        response = slack_post(None, form=form)
        assert response.status_code == 200
        assert response.json()["ignored"].startswith("expected a form field `payload`")
    nobody = slack_click(gate.pk, "approve", ts="1.0005")
    del nobody["user"]
    assert slack_post(nobody).json()["ignored"] == "the interaction names no user"

    assert [e["text"] for e in ephemerals(chat_fakes)] == [
        "This button is not from a Flowgate card: nothing was decided.",
        "This approval no longer exists.",
        "This approval no longer exists.",
    ]
    assert GateDecision.objects.count() == 0
    assert set(Gate.objects.values_list("status", flat=True)) == {GateStatus.OPEN}


def test_an_unsigned_malformed_body_is_401_and_writes_nothing(slack, gate):
    before = snapshot(gate)
    client = Client()
    no_payload = client.post(
        "/channels/slack/interactions", data="x=1", content_type="application/x-www-form-urlencoded"
    )
    assert no_payload.status_code == 401
    assert no_payload.json()["code"] == "INVALID_SIGNATURE"
    assert client.get("/channels/slack/interactions").status_code == 405
    assert snapshot(gate) == before


@pytest.mark.django_db(transaction=True)
def test_approve_from_slack_updates_every_card_on_every_platform(
    chat_fakes, celery_worker_factory, operator, reviewer
):
    """End to end with a real Celery worker: the gate's cards are posted on all three platforms,
    a linked reviewer approves from Slack, and every card shows the decision without buttons."""
    celery_worker_factory(env=chat_fakes.env)
    chat_fakes.connect(operator.workspace)
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)
    gate = gate_for(operator)
    wait_for(lambda: cards(gate, MessageState.POSTED) == KINDS, message="cards posted")

    assert slack_post(slack_click(gate.pk, "approve")).status_code == 200

    wait_for(lambda: cards(gate, MessageState.UPDATED) == KINDS, message="cards updated")
    by_kind = {
        m.connection.kind: m
        for m in ApprovalMessage.objects.filter(gate=gate).select_related("connection")
    }
    assert {m.rendered_outcome for m in by_kind.values()} == {"approve"}
    slack_card = chat_fakes.slack.messages[("C0FLOWGATE", by_kind["slack"].message_id)]
    assert "via Slack" in str(slack_card["blocks"])
    assert not [b for b in slack_card["blocks"] if b["type"] == "actions"]
    discord_card = chat_fakes.discord.messages[
        ("1100000000000000001", by_kind["discord"].message_id)
    ]
    assert discord_card["components"] == []
    telegram_card = chat_fakes.telegram.messages[("-1001234567890", by_kind["telegram"].message_id)]
    assert "via Slack" in telegram_card["text"] and "reply_markup" not in telegram_card


KINDS = {"slack", "discord", "telegram"}


def cards(gate, state) -> set[str]:
    return set(
        ApprovalMessage.objects.filter(gate=gate, state=state).values_list(
            "connection__kind", flat=True
        )
    )
