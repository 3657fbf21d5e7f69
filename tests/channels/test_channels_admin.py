"""The admin for chat connections and identities: saved through `channels.services` (audited,
secrets write-only), scoped to the staff user's workspaces."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from channels.models import ChannelConnection, ChatIdentity
from governance.models import AuditEvent, Membership, Role

pytestmark = pytest.mark.django_db

ADD = "admin:flowgate_channels_channelconnection_add"
CHANGE = "admin:flowgate_channels_channelconnection_change"
CONNECTIONS = "admin:flowgate_channels_channelconnection_changelist"
IDENTITY_ADD = "admin:flowgate_channels_chatidentity_add"
IDENTITIES = "admin:flowgate_channels_chatidentity_changelist"
IDENTITY_DELETE = "admin:flowgate_channels_chatidentity_delete"


def console(member) -> Client:
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    client = Client(raise_request_exception=False)
    client.force_login(member.user)
    return client


def slack_form(workspace, **overrides) -> dict:
    return {
        "workspace": workspace.pk,
        "kind": "slack",
        "name": "approvals",
        "channel_id": "C0FLOWGATE",
        "external_team_id": "T0001",
        "application_id": "",
        "public_key": "",
        "bot_token": "xoxb-admin-token",
        "signing_secret": "admin-signing-secret",
        "is_active": "on",
        **overrides,
    }


def test_an_admin_adds_a_connection_through_the_service(admin):
    response = console(admin).post(reverse(ADD), slack_form(admin.workspace))

    assert response.status_code == 302, response.content.decode()[:2000]
    row = ChannelConnection.objects.get()
    assert (row.bot_token, row.signing_secret) == ("xoxb-admin-token", "admin-signing-secret")
    event = AuditEvent.objects.get(event_type="channels.connection.created")
    assert event.actor_id == "ada-admin"


def test_the_change_page_never_shows_a_secret_and_blank_keeps_it(admin):
    client = console(admin)
    client.post(reverse(ADD), slack_form(admin.workspace))
    row = ChannelConnection.objects.get()
    page = client.get(reverse(CHANGE, args=[row.pk])).content.decode()
    assert "xoxb-admin-token" not in page and "admin-signing-secret" not in page

    form = slack_form(admin.workspace, channel_id="C0NEW", bot_token="", signing_secret="")
    response = client.post(reverse(CHANGE, args=[row.pk]), form)

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.channel_id, row.bot_token, row.signing_secret) == (
        "C0NEW",
        "xoxb-admin-token",
        "admin-signing-secret",
    )
    event = AuditEvent.objects.get(event_type="channels.connection.updated")
    assert (event.payload["changed"], event.payload["secretsChanged"]) == (["channel_id"], [])


def test_the_services_checks_are_form_errors(admin):
    """A Slack connection without a secret of its own needs the deployment's Slack app, which
    this deployment (no FLOWGATE_SLACK_SIGNING_SECRET) does not have."""
    response = console(admin).post(reverse(ADD), slack_form(admin.workspace, signing_secret=""))
    assert response.status_code == 200
    assert "FLOWGATE_SLACK_SIGNING_SECRET is unset" in response.content.decode()
    assert not ChannelConnection.objects.exists()


def test_a_name_taken_in_the_workspace_is_a_form_error_on_add_and_change(admin):
    """Names are unique per workspace and kind: the clash is shown next to the name field, on
    the add page and the change page, never a 500."""
    client = console(admin)
    client.post(reverse(ADD), slack_form(admin.workspace))
    client.post(reverse(ADD), slack_form(admin.workspace, name="second"))
    second = ChannelConnection.objects.get(name="second")

    added = client.post(reverse(ADD), slack_form(admin.workspace))
    changed = client.post(reverse(CHANGE, args=[second.pk]), slack_form(admin.workspace))

    for response in (added, changed):
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert "exists in this workspace" in " ".join(errors["name"])
    assert list(ChannelConnection.objects.order_by("pk").values_list("name", flat=True)) == [
        "approvals",
        "second",
    ]


def test_deactivate_action(admin):
    client = console(admin)
    client.post(reverse(ADD), slack_form(admin.workspace))
    row = ChannelConnection.objects.get()
    client.post(
        reverse(CONNECTIONS),
        {"action": "deactivate", "index": "0", "_selected_action": [str(row.pk)]},
    )
    row.refresh_from_db()
    assert row.is_active is False
    assert AuditEvent.objects.filter(event_type="channels.connection.deactivated").count() == 1


def test_staff_see_only_their_workspaces_and_change_only_what_they_administer(
    admin, reviewer, outsider
):
    console(admin).post(reverse(ADD), slack_form(admin.workspace))
    row = ChannelConnection.objects.get()

    assert console(outsider).get(reverse(CHANGE, args=[row.pk])).status_code == 404
    assert "C0FLOWGATE" not in console(outsider).get(reverse(CONNECTIONS)).content.decode()
    assert "C0FLOWGATE" in console(admin).get(reverse(CONNECTIONS)).content.decode()
    viewer_page = console(reviewer).get(reverse(CHANGE, args=[row.pk]))
    assert viewer_page.status_code == 200  # visible, read-only
    refused = console(reviewer).post(reverse(CHANGE, args=[row.pk]), slack_form(admin.workspace))
    assert refused.status_code == 403
    assert console(reviewer).get(reverse(ADD)).status_code == 403


def test_an_admin_links_an_identity(admin, reviewer):
    response = console(admin).post(
        reverse(IDENTITY_ADD),
        {
            "user": reviewer.user.pk,
            "kind": "slack",
            "external_team_id": "T0001",
            "external_user_id": "U0RITA",
            "display_name": "rita",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    identity = ChatIdentity.objects.get()
    assert (identity.user, identity.is_confirmed) == (reviewer.user, False)
    assert AuditEvent.objects.filter(event_type="channels.identity.linked").count() == 1


def test_a_non_admin_cannot_link_someone_else_in_the_admin(reviewer, operator):
    response = console(operator).post(
        reverse(IDENTITY_ADD),
        {"user": reviewer.user.pk, "kind": "slack", "external_user_id": "U0RITA"},
    )
    assert response.status_code == 403
    assert not ChatIdentity.objects.exists()


def identity_form(user, **overrides) -> dict:
    return {
        "user": user.pk,
        "kind": "telegram",
        "external_team_id": "",
        "external_user_id": "9",
        "display_name": "",
        **overrides,
    }


def test_the_services_identity_checks_are_form_errors(admin, reviewer):
    response = console(admin).post(
        reverse(IDENTITY_ADD), identity_form(reviewer.user, kind="slack", external_user_id="U1")
    )
    assert response.status_code == 200
    assert response.context_data["adminform"].form.errors == {"external_team_id": ["Required."]}
    assert not ChatIdentity.objects.exists()


def test_a_workspace_admin_picks_among_the_members_of_workspaces_they_administer(
    admin, reviewer, outsider
):
    page = console(admin).get(reverse(IDENTITY_ADD)).content.decode()
    assert f'<option value="{reviewer.user.pk}">' in page
    assert f'<option value="{outsider.user.pk}">' not in page
    refused = console(admin).post(reverse(IDENTITY_ADD), identity_form(outsider.user))
    assert refused.status_code == 200  # not a choice: a form error
    assert not ChatIdentity.objects.exists()


def test_an_identity_the_staff_user_may_not_unlink_cannot_be_deleted(
    admin, reviewer, other_workspace
):
    """Rita also belongs to a workspace ada does not run: ada may not unlink her."""
    Membership.objects.create(user=reviewer.user, workspace=other_workspace, role=Role.VIEWER)
    identity = ChatIdentity.objects.create(
        user=reviewer.user, kind="telegram", external_user_id="9"
    )
    client = console(admin)
    url = reverse(IDENTITY_DELETE, args=[identity.pk])

    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse(IDENTITIES),
        {"action": "delete_selected", "_selected_action": [identity.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)
    assert ChatIdentity.objects.filter(pk=identity.pk).exists()


def test_an_admin_unlinks_a_member(admin, reviewer):
    identity = ChatIdentity.objects.create(
        user=reviewer.user, kind="telegram", external_user_id="9"
    )
    response = console(admin).post(reverse(IDENTITY_DELETE, args=[identity.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not ChatIdentity.objects.exists()
    assert AuditEvent.objects.filter(event_type="channels.identity.unlinked").count() == 1


def test_a_staff_user_without_memberships_is_refused_not_a_500(db, django_user_model):
    staff = django_user_model.objects.create_user("sid-staff", is_staff=True)
    client = Client(raise_request_exception=False)
    client.force_login(staff)
    assert client.get(reverse(IDENTITY_ADD)).status_code == 403
    assert client.get(reverse(IDENTITIES)).status_code in (200, 403)
