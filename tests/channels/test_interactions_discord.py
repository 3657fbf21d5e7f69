"""`POST /channels/discord/interactions`: Ed25519-signed interactions as Discord sends them;
every answer is the interaction response itself (ephemeral messages, the rework modal)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import Client

from approvals.decisions import gate_decide
from approvals.models import Gate, GateDecision, GateStatus
from automations.models import RunStatus
from tests.factories import actor_for, gate_for, link, reopen
from tests.support.interactions import (
    decisions,
    denial_codes,
    discord_click,
    discord_post,
    discord_submission,
    public_hex,
    snapshot,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RITA = "2000000000000000001"


@pytest.fixture
def discord_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def gate(operator):
    return gate_for(operator)


@pytest.fixture
def discord(chat_fakes, gate, discord_key):
    connection = chat_fakes.connect(gate.workspace, kinds=["discord"])["discord"]
    connection.public_key = public_hex(discord_key)
    connection.save(update_fields=["public_key"])
    return connection


@pytest.fixture
def rita(reviewer):
    link(reviewer, "discord", RITA, name="Rita")
    return reviewer


def ephemeral(response) -> str:
    body = response.json()
    assert body["type"] == 4 and body["data"]["flags"] == 64, body
    assert body["data"]["allowed_mentions"] == {"parse": []}
    return body["data"]["content"]


def test_ping_is_answered_with_pong(discord, discord_key):
    response = discord_post(
        {"id": "1", "application_id": "1000000000000000001", "type": 1}, discord_key
    )
    assert response.status_code == 200
    assert response.json() == {"type": 1}


def test_a_ping_with_a_bad_signature_is_401(discord):
    """Discord checks the endpoint by sending wrongly signed requests: they must get 401."""
    other = Ed25519PrivateKey.generate()
    response = discord_post({"id": "1", "application_id": "1000000000000000001", "type": 1}, other)
    assert response.status_code == 401


def test_approve_by_a_linked_reviewer_applies(discord, discord_key, gate, rita):
    response = discord_post(discord_click(gate.pk, "approve"), discord_key)

    assert ephemeral(response).startswith("Approved: ")
    gate.run.refresh_from_db()
    assert gate.run.status == RunStatus.QUEUED
    assert decisions(gate) == [("approve", "discord", "rita-reviewer", "")]


def test_forged_expired_and_replayed_requests_change_nothing(discord, discord_key, gate, rita):
    before = snapshot(gate)
    forged = discord_post(discord_click(gate.pk, "approve"), Ed25519PrivateKey.generate())
    expired = discord_post(
        discord_click(gate.pk, "approve"), discord_key, timestamp=int(time.time()) - 600
    )
    assert (forged.status_code, expired.status_code) == (401, 401)
    assert snapshot(gate) == before

    click = discord_click(gate.pk, "cancel")
    discord_post(click, discord_key)
    after_first = snapshot(gate)
    replay = discord_post(click, discord_key)
    assert ephemeral(replay) == "This click was already handled."
    assert snapshot(gate) == after_first
    assert decisions(gate) == [("cancel", "discord", "rita-reviewer", "")]


@pytest.mark.parametrize(
    "stamp",
    ["\u00b2", "\u0661\u0662\u0663", "9" * 5000, "-1", ""],
    ids=["superscript", "arabic-indic", "5000-digits", "negative", "blank"],
)
def test_an_odd_timestamp_header_is_401_and_writes_nothing(discord, discord_key, gate, rita, stamp):
    """Unicode digits ("²" passes `str.isdigit()` but not int()), digits past int()'s conversion
    limit, signs, nothing: unverifiable even when signed with the right key, so 401, not a 500."""
    before = snapshot(gate)
    response = discord_post(discord_click(gate.pk, "approve"), discord_key, timestamp=stamp)
    assert response.status_code == 401
    assert snapshot(gate) == before


def test_an_unlinked_user_is_told_privately_how_to_link(discord, discord_key, gate):
    response = discord_post(discord_click(gate.pk, "approve", user="2999"), discord_key)

    text = ephemeral(response)
    assert text.startswith("Your Discord account is not linked to Flowgate: http")
    assert "/channels/link/" in text
    assert decisions(gate) == []
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"]


def test_the_requester_cannot_approve_their_own_consequential_gate(chat_fakes, admin, discord_key):
    gate = gate_for(admin, policy={"risk_tier": "external_send"})
    connection = chat_fakes.connect(gate.workspace, kinds=["discord"])["discord"]
    connection.public_key = public_hex(discord_key)
    connection.save(update_fields=["public_key"])
    link(admin, "discord", "2000000000000000042")

    response = discord_post(
        discord_click(gate.pk, "approve", user="2000000000000000042"), discord_key
    )

    assert ephemeral(response) == "You cannot approve your own request."
    assert decisions(gate) == []


def test_a_stale_card_cannot_decide_the_current_opening(discord, discord_key, gate, rita, reviewer):
    gate_decide(actor=actor_for(reviewer), run=gate.run, decision="rework", reason="again")
    current = reopen(gate)

    response = discord_post(discord_click(gate.pk, "approve"), discord_key)

    assert ephemeral(response).startswith("Already sent back for rework by rita-reviewer")
    current.refresh_from_db()
    assert current.status == GateStatus.OPEN
    assert decisions(current) == []


def test_rework_opens_a_modal_and_its_submission_records_the_reason(
    discord, discord_key, gate, rita
):
    response = discord_post(discord_click(gate.pk, "rework"), discord_key)

    modal = response.json()
    assert modal["type"] == 9
    assert modal["data"]["custom_id"] == f"fg:rework:{gate.pk}"
    [field] = modal["data"]["components"][0]["components"]
    assert (field["custom_id"], field["required"]) == ("reason", True)
    assert decisions(gate) == []

    submitted = discord_post(
        discord_submission(modal["data"]["custom_id"], "Add the appendix"), discord_key
    )

    assert ephemeral(submitted).startswith("Sent back for rework: ")
    assert decisions(gate) == [("rework", "discord", "rita-reviewer", "Add the appendix")]


def test_a_modal_submission_without_a_reason_decides_nothing(discord, discord_key, gate, rita):
    response = discord_post(discord_submission(f"fg:rework:{gate.pk}", " "), discord_key)
    assert ephemeral(response) == "Say what should change: a rework needs a reason."
    assert decisions(gate) == []


def test_signed_but_unusable_requests_answer_200_with_words_and_decide_nothing(
    discord, discord_key, gate, rita, outsider
):
    """Only an unverifiable request is an HTTP error: a signed one that decides nothing is an
    ephemeral answer telling the user why."""
    theirs = gate_for(outsider, automation_id="globex-report")
    unknown = discord_click(gate.pk, "approve", id="9000011")
    unknown["data"]["custom_id"] = f"fg:frobnicate:{gate.pk}"
    told = [
        ephemeral(discord_post(unknown, discord_key)),
        ephemeral(
            discord_post(discord_click("no-such-gate", "approve", id="9000012"), discord_key)
        ),
        ephemeral(discord_post(discord_click(theirs.pk, "cancel", id="9000013"), discord_key)),
        ephemeral(discord_post(None, discord_key, raw="{not json")),
    ]

    assert told == [
        "This button is not from a Flowgate card: nothing was decided.",
        "This approval no longer exists.",
        "This approval no longer exists.",
        "Flowgate could not read this interaction: nothing was decided.",
    ]
    assert GateDecision.objects.count() == 0
    assert set(Gate.objects.values_list("status", flat=True)) == {GateStatus.OPEN}


def test_unsigned_malformed_json_is_401(discord):
    response = Client().post(
        "/channels/discord/interactions", data="{not json", content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_SIGNATURE"
