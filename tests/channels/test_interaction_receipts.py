"""Interaction receipts: a delivery is claimed for the connections that verified it, so another
workspace's connection naming our bot, team or app with a secret of its own cannot pre-claim
our (predictable) delivery keys; receipts older than any redelivery are forgotten by the beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.utils import timezone

from channels.interactions.deciding import RECEIPT_RETENTION
from channels.models import ChannelConnection, ChannelKind, InteractionReceipt, LinkTokenUse
from channels.tasks import forget_receipts
from tests.factories import gate_for, link
from tests.support.interactions import (
    DISCORD_APP,
    SLACK_TEAM,
    decisions,
    discord_click,
    discord_post,
    public_hex,
    slack_click,
    slack_post,
    snapshot,
    telegram_post,
    telegram_press,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

SQUATTER_SECRET = "the-other-workspaces-own-secret"


@pytest.fixture
def gate(operator):
    return gate_for(operator)


def squat(workspace, kind: str, **values) -> ChannelConnection:
    """A connection another workspace's admin may create: our bot/team/app, their secret."""
    return ChannelConnection.objects.create(
        workspace=workspace, kind=kind, name="squatter", channel_id="-1", **values
    )


def test_another_workspace_cannot_preclaim_telegram_update_ids(
    chat_fakes, gate, reviewer, other_workspace
):
    chat_fakes.connect(gate.workspace, kinds=["telegram"])  # bot 123456
    link(reviewer, "telegram", "5000001")
    squat(
        other_workspace,
        ChannelKind.TELEGRAM,
        bot_token="123456:not-the-real-token",
        signing_secret=SQUATTER_SECRET,
    )
    for update_id in range(100, 105):  # update ids count up per bot: predictable
        press = telegram_press("nope", "approve", update_id=update_id)
        assert telegram_post(press, secret=SQUATTER_SECRET).status_code == 200

    # Telegram delivers the reviewer's real press in our chat as update 101.
    assert telegram_post(telegram_press(gate.pk, "approve", update_id=101)).status_code == 200

    assert decisions(gate) == [("approve", "telegram", "rita-reviewer", "")]


def test_another_workspace_cannot_preclaim_a_slack_delivery(
    chat_fakes, gate, reviewer, other_workspace
):
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    link(reviewer, "slack", "U0RITA", team_id=SLACK_TEAM)
    squat(
        other_workspace,
        ChannelKind.SLACK,
        external_team_id=SLACK_TEAM,
        signing_secret=SQUATTER_SECRET,
    )
    click = slack_click(gate.pk, "approve")
    assert slack_post(click, secret=SQUATTER_SECRET).status_code == 200  # the same key, first

    assert slack_post(click).status_code == 200

    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]


def test_another_workspace_cannot_preclaim_a_discord_interaction(
    chat_fakes, gate, reviewer, other_workspace
):
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    connection = chat_fakes.connect(gate.workspace, kinds=["discord"])["discord"]
    connection.public_key = public_hex(ours)
    connection.save(update_fields=["public_key"])
    link(reviewer, "discord", "2000000000000000001")
    squat(
        other_workspace,
        ChannelKind.DISCORD,
        application_id=DISCORD_APP,
        public_key=public_hex(theirs),
    )
    click = discord_click(gate.pk, "approve")
    assert discord_post(click, theirs).status_code == 200

    assert discord_post(click, ours).status_code == 200

    assert decisions(gate) == [("approve", "discord", "rita-reviewer", "")]


def test_a_delivery_verified_by_several_connections_stays_handled_when_one_more_shares_it(
    chat_fakes, gate, reviewer, other_workspace
):
    """Two workspaces sharing one bot (one webhook secret): the delivery is claimed for both,
    and Telegram's redelivery is still recognised after a third connection with the same
    secret appears, or one of the first two goes away."""
    [ours] = chat_fakes.connect(gate.workspace, kinds=["telegram"]).values()
    link(reviewer, "telegram", "5000001")
    shared = {"bot_token": ours.bot_token, "signing_secret": ours.signing_secret}
    theirs = squat(other_workspace, ChannelKind.TELEGRAM, **shared)
    press = telegram_press(gate.pk, "approve", update_id=9)
    telegram_post(press)
    assert set(InteractionReceipt.objects.values_list("connection_id", flat=True)) == {
        ours.pk,
        theirs.pk,
    }
    after_first = snapshot(gate)

    ChannelConnection.objects.create(
        workspace=other_workspace,
        kind=ChannelKind.TELEGRAM,
        name="third",
        channel_id="-3",
        **shared,
    )
    assert telegram_post(press).status_code == 200
    theirs.delete()
    assert telegram_post(press).status_code == 200

    assert decisions(gate) == [("approve", "telegram", "rita-reviewer", "")]
    assert snapshot(gate)[:3] == after_first[:3]  # no decision, audit event or status change


def test_the_beat_forgets_receipts_older_than_any_redelivery(
    chat_fakes, gate, django_assert_num_queries
):
    [connection] = chat_fakes.connect(gate.workspace, kinds=["telegram"]).values()
    now = timezone.now()
    ages = {"old": RECEIPT_RETENTION + timedelta(minutes=1), "young": timedelta(hours=23)}
    for key, age in ages.items():
        receipt = InteractionReceipt.objects.create(connection=connection, delivery_key=key)
        InteractionReceipt.objects.filter(pk=receipt.pk).update(received_at=now - age)

    for digest, age in {"used": timedelta(minutes=16), "fresh": timedelta(minutes=1)}.items():
        use = LinkTokenUse.objects.create(token_digest=digest)
        LinkTokenUse.objects.filter(pk=use.pk).update(used_at=now - age)

    # One DELETE per table (receipts, used link tokens), whatever the number of rows.
    with django_assert_num_queries(2):
        forget_receipts.apply()

    assert list(InteractionReceipt.objects.values_list("delivery_key", flat=True)) == ["young"]
    # A used token is kept while it could still be presented (LINK_MAX_AGE_S, 15 minutes).
    assert list(LinkTokenUse.objects.values_list("token_digest", flat=True)) == ["fresh"]
    assert timedelta(hours=24) < RECEIPT_RETENTION  # Telegram redelivers for up to a day
    scheduled = settings.CELERY_BEAT_SCHEDULE["forget-interaction-receipts"]
    assert scheduled["task"] == forget_receipts.name
