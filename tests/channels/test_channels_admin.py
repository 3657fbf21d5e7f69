"""The admin for chat connections and identities: saved through `channels.services` (audited,
secrets write-only), scoped to the staff user's workspaces."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from channels.models import ChannelConnection, ChatIdentity
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db

ADD = "admin:flowgate_channels_channelconnection_add"
CHANGE = "admin:flowgate_channels_channelconnection_change"
CONNECTIONS = "admin:flowgate_channels_channelconnection_changelist"
IDENTITY_ADD = "admin:flowgate_channels_chatidentity_add"
IDENTITIES = "admin:flowgate_channels_chatidentity_changelist"


def console(member) -> Client:
    member.user.is_staff = True
    member.user.save(update_fields=["is_staff"])
    client = Client()
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
    response = console(admin).post(reverse(ADD), slack_form(admin.workspace, signing_secret=""))
    assert response.status_code == 200
    assert "Required for this platform." in response.content.decode()
    assert not ChannelConnection.objects.exists()


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
    assert ChatIdentity.objects.get().user == reviewer.user
    assert AuditEvent.objects.filter(event_type="channels.identity.linked").count() == 1


def test_a_non_admin_cannot_link_someone_else_in_the_admin(reviewer, operator):
    response = console(operator).post(
        reverse(IDENTITY_ADD),
        {"user": reviewer.user.pk, "kind": "slack", "external_user_id": "U0RITA"},
    )
    assert response.status_code == 403
    assert not ChatIdentity.objects.exists()
