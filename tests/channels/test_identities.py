"""Chat identities: who may link a chat account to whom (`channels.services`), and
`/api/channels/identities` for workspace admins."""

from __future__ import annotations

import pytest

from channels.linking import ChatAccount
from channels.models import ChatIdentity
from channels.services import identity_link, identity_unlink
from governance.errors import Conflict, Forbidden, InvalidRequest
from governance.models import AuditEvent, Role
from tests.automations.test_run_control import actor_for

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


def test_a_user_links_their_own_account(reviewer):
    identity = identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
    assert (identity.user, identity.external_user_id) == (reviewer.user, "U0RITA")
    assert linked_events() == [("acme/ops", "rita-reviewer")]


def test_an_admin_links_a_member_and_it_is_audited_in_each_of_their_workspaces(
    admin, reviewer, make_member
):
    make_member("acme/sales", "ada-admin", role=Role.ADMIN)
    make_member("acme/sales", "rita-reviewer", role=Role.REVIEWER)

    identity_link(actor=actor_for(admin), user=reviewer.user, account=RITA_SLACK)

    assert linked_events() == [("acme/ops", "ada-admin"), ("acme/sales", "ada-admin")]


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


def test_an_account_linked_to_someone_else_is_409_and_relinking_to_the_same_user_is_a_no_op(
    admin, reviewer
):
    identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
    again = identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
    assert ChatIdentity.objects.get() == again
    with pytest.raises(Conflict) as taken:
        identity_link(actor=actor_for(admin), user=admin.user, account=RITA_SLACK)
    assert taken.value.code == "CHANNEL_IDENTITY_TAKEN"
    assert len(linked_events()) == 1


def test_unlink_is_audited(reviewer):
    identity = identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
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
    client.post(
        URL, {"user": "ada-admin", "kind": "telegram", "external_user_id": "5000001"}, format="json"
    )

    with django_assert_max_num_queries(6):
        listed = client.get(URL).json()
    assert sorted(i["user"] for i in listed["identities"]) == ["ada-admin", "rita-reviewer"]

    assert client.delete(f"{URL}/{body['identity_id']}").status_code == 204
    assert client.get(URL).json()["count"] == 1


def test_api_refusals(admin, reviewer, outsider):
    identity = identity_link(actor=actor_for(reviewer), user=reviewer.user, account=RITA_SLACK)
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
