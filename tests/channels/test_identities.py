"""Chat identities: who may link a chat account to whom (`channels.services`), and
`/api/channels/identities` for workspace admins."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from channels.linking import ChatAccount
from channels.models import ChannelConnection, ChatIdentity
from channels.services import connection_update, identity_confirm, identity_link, identity_unlink
from governance.errors import Conflict, Forbidden, InvalidRequest
from governance.models import AuditEvent, Role
from tests.factories import actor_for

pytestmark = pytest.mark.django_db

URL = "/api/channels/identities"
RITA_SLACK = ChatAccount(kind="slack", team_id="T0001", user_id="U0RITA", display_name="rita")


def linked_events() -> list[tuple[str, str]]:
    return [
        (e.workspace.path, e.actor_id)
        for e in AuditEvent.objects.filter(event_type="channels.identity.linked")
        .select_related("workspace__organization")
        .order_by("workspace_id")
    ]


@pytest.fixture
def slack(reviewer) -> ChannelConnection:
    return ChannelConnection.objects.create(
        workspace=reviewer.workspace,
        kind="slack",
        name="approvals",
        channel_id="C0FLOWGATE",
        external_team_id="T0001",
        bot_token="xoxb-test-token",
        signing_secret="slack-signing-secret",
    )


def proven(member, connection: ChannelConnection) -> ChatIdentity:
    """What the link page does when `member` confirms RITA_SLACK sent through `connection`
    (each time with a link token of its own: a token links once)."""
    return identity_confirm(
        actor=replace(actor_for(member), source="page"),
        account=RITA_SLACK,
        connection=connection,
        token=uuid.uuid4().hex,
    )


def test_a_user_cannot_link_their_own_account_outside_the_link_page(reviewer):
    """Else anyone could claim a colleague's chat account id and decide as themselves when the
    colleague clicks."""
    with pytest.raises(Forbidden) as refused:
        identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
    assert refused.value.code == "CHANNEL_IDENTITY_DENIED"
    assert not ChatIdentity.objects.exists()


def test_an_admins_link_is_unconfirmed_and_audited_in_each_of_their_workspaces(
    admin, reviewer, make_member
):
    make_member("acme/sales", "ada-admin", role=Role.ADMIN)
    make_member("acme/sales", "rita-reviewer", role=Role.REVIEWER)

    identity = identity_link(actor=actor_for(admin), user=reviewer.user, account=RITA_SLACK)

    assert (identity.connection, identity.confirmed_at, identity.is_confirmed) == (
        None,
        None,
        False,
    )
    assert linked_events() == [("acme/ops", "ada-admin"), ("acme/sales", "ada-admin")]
    again = identity_link(actor=actor_for(admin), user=reviewer.user, account=RITA_SLACK)
    assert ChatIdentity.objects.get() == again  # a no-op


def test_an_admin_of_only_one_of_the_users_workspaces_is_refused(admin, reviewer, make_member):
    """Otherwise ada could give a chat account rita's power in a workspace ada does not run."""
    make_member("acme/sales", "rita-reviewer", role=Role.REVIEWER)
    with pytest.raises(Forbidden) as refused:
        identity_link(actor=actor_for(admin), user=reviewer.user, account=RITA_SLACK)
    assert refused.value.code == "CHANNEL_IDENTITY_DENIED"
    assert not ChatIdentity.objects.exists()
    assert AuditEvent.objects.filter(event_type="automation.governance.denied").count() == 1


def test_a_non_admin_cannot_link_someone_else(operator, reviewer):
    with pytest.raises(Forbidden):
        identity_link(actor=actor_for(operator), user=reviewer.user, account=RITA_SLACK)
    assert not ChatIdentity.objects.exists()


def test_agents_cannot_be_linked(admin, agent):
    with pytest.raises(InvalidRequest) as refused:
        identity_link(actor=actor_for(admin), user=agent.user, account=RITA_SLACK)
    assert refused.value.code == "CHANNEL_IDENTITY_NOT_HUMAN"


def test_a_proven_account_is_409_for_another_user_on_its_connection_and_free_on_others(
    admin, reviewer, slack, make_member
):
    first = proven(reviewer, slack)
    assert proven(reviewer, slack) == first  # confirming again changes nothing
    with pytest.raises(Conflict) as taken:
        proven(admin, slack)
    assert taken.value.code == "CHANNEL_IDENTITY_TAKEN"
    # The same Slack account proven through another workspace's connection is another link.
    sales = make_member("acme/sales", "sam-sales", role=Role.REVIEWER)
    other = ChannelConnection.objects.create(
        workspace=sales.workspace, kind="slack", name="sales", channel_id="C2", signing_secret="s"
    )
    assert proven(sales, other).user == sales.user
    assert ChatIdentity.objects.filter(connection__isnull=False).count() == 2


def test_a_changed_verifying_secret_releases_the_links_proven_through_the_connection(
    admin, reviewer, slack
):
    """Whoever sets a connection's new signing secret could otherwise forge its users' clicks."""
    proven(reviewer, slack)
    connection_update(actor=actor_for(admin), connection=slack, data={"channel_id": "C0OTHER"})
    assert ChatIdentity.objects.count() == 1
    connection_update(actor=actor_for(admin), connection=slack, data={"signing_secret": "new"})
    assert not ChatIdentity.objects.exists()
    event = AuditEvent.objects.filter(event_type="channels.connection.updated").latest("seq")
    assert event.payload["identitiesReleased"] == 1


def test_unlink_is_audited(reviewer, slack):
    identity = proven(reviewer, slack)
    identity_unlink(actor=actor_for(reviewer), identity=identity)
    assert not ChatIdentity.objects.exists()
    assert AuditEvent.objects.filter(event_type="channels.identity.unlinked").count() == 1


# --- API ----------------------------------------------------------------------------------------


def test_admin_creates_lists_and_deletes_identities(admin, reviewer, django_assert_max_num_queries):
    client = admin.client()
    response = client.post(
        URL,
        {
            "user": "rita-reviewer",
            "kind": "slack",
            "external_team_id": "T0001",
            "external_user_id": "U0RITA",
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["user"], body["kind"], body["external_user_id"]) == (
        "rita-reviewer",
        "slack",
        "U0RITA",
    )
    assert (body["confirmed"], body["connection_id"], body["confirmed_at_ms"]) == (
        False,
        None,
        None,
    )
    client.post(
        URL, {"user": "ada-admin", "kind": "telegram", "external_user_id": "5000001"}, format="json"
    )

    with django_assert_max_num_queries(6):
        listed = client.get(URL).json()
    assert sorted(i["user"] for i in listed["identities"]) == ["ada-admin", "rita-reviewer"]

    assert client.delete(f"{URL}/{body['identity_id']}").status_code == 204
    assert client.get(URL).json()["count"] == 1


def test_a_member_cannot_claim_a_chat_account_through_the_api(viewer, reviewer):
    """A viewer claiming a colleague's Telegram id would decide as the viewer when the colleague
    clicks; members link only through the link page."""
    response = viewer.client().post(
        URL,
        {"user": viewer.user.username, "kind": "telegram", "external_user_id": "5000001"},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (403, "CHANNEL_ACCESS_DENIED")
    assert not ChatIdentity.objects.exists()
    denied = AuditEvent.objects.get(event_type="automation.governance.denied")
    assert denied.payload["action"] == "channels.identity.link"


def test_api_refusals(admin, reviewer, outsider, slack):
    identity = proven(reviewer, slack)
    body = {"user": "rita-reviewer", "kind": "discord", "external_user_id": "2001"}
    assert reviewer.client().get(URL).status_code == 403
    stranger = {**body, "user": "oscar-outsider"}
    assert admin.client().post(URL, stranger, format="json").status_code == 400
    assert admin.client().post(URL, {**body, "kind": "irc"}, format="json").status_code == 400
    assert admin.client().post(URL, {**body, "extra": 1}, format="json").status_code == 400
    no_team = {**body, "kind": "slack"}
    assert "external_team_id" in admin.client().post(URL, no_team, format="json").json()["fields"]
    # Another workspace's member's identity does not exist for the outsider.
    assert outsider.client().delete(f"{URL}/{identity.pk}").status_code == 404
    assert outsider.client().get(URL).json()["count"] == 0
    assert ChatIdentity.objects.count() == 1
