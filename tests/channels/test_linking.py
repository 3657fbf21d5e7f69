"""Self-service linking: the link an unlinked chat user is sent, the page it opens (login
required, confirm by a CSRF-protected POST), and the click that then counts."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from channels.linking import SALT, ChatAccount, link_url
from channels.models import ChannelConnection, ChatIdentity
from channels.services import identity_link
from governance.models import AuditEvent, Membership, Role
from tests.factories import actor_for, gate_for, link
from tests.support.interactions import (
    decisions,
    denial_codes,
    slack_click,
    slack_post,
    telegram_post,
    telegram_press,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

ACCOUNT = ChatAccount(kind="slack", team_id="T0001", user_id="U0RITA", display_name="rita")


@pytest.fixture
def connection(reviewer) -> ChannelConnection:
    """The Slack connection of the reviewer's workspace that the link's click came through."""
    return ChannelConnection.objects.create(
        workspace=reviewer.workspace,
        kind="slack",
        name="approvals",
        channel_id="C0FLOWGATE",
        external_team_id="T0001",
        bot_token="xoxb-test-token",
        signing_secret="slack-signing-secret",
    )


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def signed_in(member) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member.user)
    return client


def confirm(client: Client, path: str, password: str = "pw-for-tests"):
    """Open the link page and confirm it, re-entering `password` (the fixtures' users')."""
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    return client.post(path, {"csrfmiddlewaretoken": token.group(1), "password": password})


def test_the_page_requires_login(reviewer, connection):
    path = path_of(link_url(ACCOUNT, connection.pk))
    response = Client().get(path)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_page_names_the_account_and_the_confirmation_links_it(reviewer, connection):
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, connection.pk))

    page = client.get(path)
    assert page.status_code == 200
    assert "Slack account rita (U0RITA) in team T0001" in page.content.decode()
    assert not ChatIdentity.objects.exists()  # a GET writes nothing

    done = confirm(client, path)

    assert done.status_code == 200
    identity = ChatIdentity.objects.get()
    assert (identity.user, identity.kind, identity.external_team_id, identity.external_user_id) == (
        reviewer.user,
        "slack",
        "T0001",
        "U0RITA",
    )
    assert (identity.connection, identity.is_confirmed) == (connection, True)
    event = AuditEvent.objects.get(event_type="channels.identity.confirmed")
    assert (event.actor_id, event.payload["source"]) == ("rita-reviewer", "page")
    assert (event.payload["connectionID"], event.payload["confirmed"]) == (connection.pk, True)


def test_the_confirmation_needs_the_csrf_token(reviewer, connection):
    client = signed_in(reviewer)
    response = client.post(path_of(link_url(ACCOUNT, connection.pk)))
    assert response.status_code == 403
    assert not ChatIdentity.objects.exists()


def test_forged_and_expired_tokens_link_nothing(reviewer, connection):
    client = signed_in(reviewer)
    good = link_url(ACCOUNT, connection.pk)
    forged = path_of(good)[:-3] + "xx/"
    old = signing.dumps(["slack", "T0001", "U0RITA", "rita", connection.pk], salt=SALT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("channels.linking.LINK_MAX_AGE_S", -1)
        expired = client.get(f"/channels/link/{old}/")
    assert client.get(forged).status_code == 400
    assert expired.status_code == 400
    assert "invalid or has expired" in expired.content.decode()
    assert not ChatIdentity.objects.exists()


def test_a_user_of_another_workspace_cannot_use_the_link(reviewer, outsider, connection):
    response = signed_in(outsider).get(path_of(link_url(ACCOUNT, connection.pk)))
    assert response.status_code == 403


def test_an_account_linked_to_someone_else_is_not_taken_over(reviewer, admin, connection):
    ChatIdentity.objects.create(
        user=admin.user,
        kind="slack",
        external_team_id="T0001",
        external_user_id="U0RITA",
        connection=connection,
        confirmed_at=timezone.now(),
    )
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, connection.pk))
    assert "linked to another Flowgate user" in client.get(path).content.decode()
    csrf = client.cookies["csrftoken"].value
    response = client.post(path, {"csrfmiddlewaretoken": csrf, "password": "pw-for-tests"})
    assert response.status_code == 409
    assert ChatIdentity.objects.get().user == admin.user
    # The refused re-link is on record (issue 14: a phished link, or an account changing hands).
    refused = AuditEvent.objects.get(event_type="automation.governance.denied")
    assert (refused.payload["code"], refused.payload["chatUserID"]) == (
        "CHANNEL_IDENTITY_TAKEN",
        "U0RITA",
    )
    assert refused.actor_id == reviewer.user.username


@pytest.mark.usefixtures("notices_in_process")
def test_from_an_unlinked_click_to_a_decision(chat_fakes, operator, reviewer):
    """The whole flow: click while unlinked → the private link → sign in and confirm → click
    again and the decision counts."""
    gate = gate_for(operator)
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    slack_post(slack_click(gate.pk, "approve", ts="1.1"))
    [told] = chat_fakes.slack.calls("chat.postEphemeral")
    link = re.search(r"https?://\S+", told.body["text"]).group(0)

    confirm(signed_in(reviewer), path_of(link))
    slack_post(slack_click(gate.pk, "approve", ts="1.2"))

    assert decisions(gate) == [("approve", "slack", "rita-reviewer", "")]


def test_a_phished_link_cannot_be_confirmed_without_the_reviewers_password(
    chat_fakes, operator, reviewer
):
    """As first found: the requester pressed a card button with their own (unlinked) Slack
    account, got the link and sent it to a reviewer; one click by the reviewer and the
    requester's clicks counted as the reviewer's. Now the page names both sides and warns,
    and confirming needs the reviewer's password: a click alone links nothing."""
    gate = gate_for(operator)
    chat_fakes.connect(gate.workspace, kinds=["slack"])
    slack_post(slack_click(gate.pk, "approve", user="U0OTTO", ts="1.1"))
    [told] = chat_fakes.slack.calls("chat.postEphemeral")
    phished = path_of(re.search(r"https?://\S+", told.body["text"]).group(0))

    client = signed_in(reviewer)
    page = client.get(phished).content.decode()
    assert "U0OTTO" in page and "rita-reviewer" in page  # both sides of the link
    assert "If someone sent you this link, do not confirm it" in page
    csrf = client.cookies["csrftoken"].value
    for password in (None, "", "a-guess"):
        form = {"csrfmiddlewaretoken": csrf}
        if password is not None:
            form["password"] = password
        assert client.post(phished, form).status_code == 400
    assert not ChatIdentity.objects.exists()

    slack_post(slack_click(gate.pk, "approve", user="U0OTTO", ts="1.2"))
    assert decisions(gate) == []


def test_a_link_token_works_once(reviewer, connection):
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, connection.pk))
    assert confirm(client, path).status_code == 200
    ChatIdentity.objects.all().delete()  # unlinked since (e.g. by an admin)

    again = confirm(client, path)

    assert again.status_code == 409
    assert "already used" in again.content.decode()
    assert not ChatIdentity.objects.exists()


def test_a_new_display_name_is_audited(admin, reviewer, connection):
    """As first found, re-linking with a new display name rewrote it without an audit event."""
    identity_link(actor=actor_for(admin), user=reviewer.user, account=ACCOUNT)
    renamed = ChatAccount(kind="slack", team_id="T0001", user_id="U0RITA", display_name="Rita R.")

    identity_link(actor=actor_for(admin), user=reviewer.user, account=renamed)

    event = AuditEvent.objects.get(event_type="channels.identity.renamed")
    assert (event.payload["displayName"], event.payload["previousDisplayName"]) == (
        "Rita R.",
        "rita",
    )
    assert ChatIdentity.objects.get().display_name == "Rita R."


def test_a_token_of_a_connection_gone_or_inactive_links_nothing(reviewer, connection):
    client = signed_in(reviewer)
    path = path_of(link_url(ACCOUNT, connection.pk))
    connection.is_active = False
    connection.save(update_fields=["is_active"])
    assert client.get(path).status_code == 400
    connection.delete()
    assert client.get(path).status_code == 400
    assert not ChatIdentity.objects.exists()


def test_the_page_confirms_an_admins_unconfirmed_link(admin, reviewer, connection):
    pending = identity_link(actor=actor_for(admin), user=reviewer.user, account=ACCOUNT)
    assert not pending.is_confirmed

    confirm(signed_in(reviewer), path_of(link_url(ACCOUNT, connection.pk)))

    identity = ChatIdentity.objects.get()  # the admin's link, now proven: not a second row
    assert (identity.pk, identity.connection, identity.is_confirmed) == (
        pending.pk,
        connection,
        True,
    )


# --- which links decide -------------------------------------------------------------------------

GOVERNED = {"risk_tier": "consequential_write"}  # the requester may not approve


def test_an_admins_link_does_not_decide_until_the_user_confirms_it(chat_fakes, admin, reviewer):
    """An admin cannot approve their own consequential gate by linking a chat account they
    control to a reviewer: the link decides nothing until the reviewer proves it."""
    gate = gate_for(admin, policy=GOVERNED)
    chat_fakes.connect(gate.workspace, kinds=["telegram"])  # the admin set this webhook secret
    response = admin.client().post(
        "/api/channels/identities",
        {"user": reviewer.user.username, "kind": "telegram", "external_user_id": "777"},
        format="json",
    )
    assert (response.status_code, response.json()["confirmed"]) == (201, False)

    assert (
        telegram_post(telegram_press(gate.pk, "approve", user=777, update_id=50)).status_code == 200
    )

    assert decisions(gate) == []
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"]


def test_a_link_proven_through_another_connection_does_not_decide(
    chat_fakes, reviewer, make_member, other_workspace
):
    """Rita proved her Telegram account through acme's bot. An admin of globex (where she is
    also a member) holds globex's webhook secret, and forges her press on a globex gate."""
    chat_fakes.connect(reviewer.workspace, kinds=["telegram"])
    link(reviewer, "telegram", "5000001")
    gus = make_member("globex/ops", "gus-admin", role=Role.ADMIN)
    Membership.objects.create(user=reviewer.user, workspace=other_workspace, role=Role.REVIEWER)
    ChannelConnection.objects.create(
        workspace=other_workspace,
        kind="telegram",
        name="globex",
        channel_id="-1009",
        bot_token="654321:globex-bot-token",
        signing_secret="gus-secret",
    )
    gate = gate_for(gus, policy=GOVERNED)

    telegram_post(telegram_press(gate.pk, "approve", update_id=60), secret="gus-secret")

    assert decisions(gate) == []
    assert denial_codes(gate) == ["AUTOMATION_V2_GATE_REVIEWER_AUTHORITY_REQUIRED"]


def test_the_decision_audit_names_the_identity_it_came_through(chat_fakes, operator, reviewer):
    gate = gate_for(operator)
    chat_fakes.connect(gate.workspace, kinds=["telegram"])
    identity = link(reviewer, "telegram", "5000001")

    telegram_post(telegram_press(gate.pk, "approve", update_id=70))

    assert decisions(gate) == [("approve", "telegram", "rita-reviewer", "")]
    event = AuditEvent.objects.get(event_type="automation.governance.gate_decided")
    assert event.payload["decidedBy"] == {
        "kind": "human",
        "actor_id": "rita-reviewer",
        "source": "telegram",
        "chat_identity_id": identity.pk,
    }
