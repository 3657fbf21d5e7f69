"""`/api/channels/connections`: workspace admins manage chat connections; secrets are write-only
and encrypted at rest; another workspace's connection does not exist for the caller."""

from __future__ import annotations

import pytest
from django.db import connection as db

from channels.models import ChannelConnection
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/api/channels/connections"
SLACK = {
    "kind": "slack",
    "name": "approvals",
    "channel_id": "C0FLOWGATE",
    "external_team_id": "T0001",
    "bot_token": "xoxb-secret-token",
    "signing_secret": "slack-signing-secret",
}
SECRETS = ("xoxb-secret-token", "slack-signing-secret")


def created(admin, body=SLACK) -> dict:
    response = admin.client().post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def events(event_type) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("seq"))


def test_create_returns_the_connection_without_its_secrets(admin):
    body = created(admin)

    assert body["kind"] == "slack" and body["workspace"] == "acme/ops"
    assert (body["has_bot_token"], body["has_signing_secret"]) == (True, True)
    assert not any(secret in str(body) for secret in SECRETS)
    assert "bot_token" not in body and "signing_secret" not in body
    [event] = events("channels.connection.created")
    assert event.actor_id == "ada-admin"
    assert event.payload["secretsChanged"] == ["bot_token", "signing_secret"]
    assert not any(secret in str(event.payload) for secret in SECRETS)


def test_secrets_are_encrypted_at_rest(admin):
    body = created(admin)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT bot_token, signing_secret FROM flowgate_channels_channelconnection WHERE id=%s",
            [body["connection_id"]],
        )
        stored = cursor.fetchone()
    assert not any(secret in value for value in stored for secret in SECRETS)
    row = ChannelConnection.objects.get(pk=body["connection_id"])
    assert (row.bot_token, row.signing_secret) == SECRETS


def test_read_and_list_never_return_secrets(admin, django_assert_max_num_queries):
    first = created(admin)
    created(admin, {**SLACK, "name": "second"})
    client = admin.client()

    with django_assert_max_num_queries(6):
        listed = client.get(URL).json()
    detail = client.get(f"{URL}/{first['connection_id']}").json()

    assert listed["count"] == 2 and listed["next_cursor"] is None
    assert detail == first
    assert not any(secret in str(listed) + str(detail) for secret in SECRETS)


def test_list_query_count_does_not_grow_with_rows(admin, django_assert_max_num_queries):
    for n in range(12):
        created(admin, {**SLACK, "name": f"c{n}"})
    with django_assert_max_num_queries(6):
        page = admin.client().get(f"{URL}?limit=5").json()
    assert page["count"] == 5 and page["next_cursor"]
    rest = admin.client().get(f"{URL}?limit=50&cursor={page['next_cursor']}").json()
    assert rest["count"] == 7


def test_update_keeps_a_secret_left_blank_and_replaces_one_given(admin):
    body = created(admin)
    url = f"{URL}/{body['connection_id']}"

    response = admin.client().patch(
        url,
        {"channel_id": "C0OTHER", "bot_token": "", "signing_secret": "new-secret"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["channel_id"] == "C0OTHER"
    row = ChannelConnection.objects.get(pk=body["connection_id"])
    assert (row.bot_token, row.signing_secret) == ("xoxb-secret-token", "new-secret")
    [event] = events("channels.connection.updated")
    assert (event.payload["changed"], event.payload["secretsChanged"]) == (
        ["channel_id"],
        ["signing_secret"],
    )


def test_deactivate_and_delete(admin):
    body = created(admin)
    url = f"{URL}/{body['connection_id']}"
    client = admin.client()

    assert client.patch(url, {"is_active": False}, format="json").json()["is_active"] is False
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert [
        e.event_type for e in AuditEvent.objects.filter(event_type__startswith="channels.")
    ] == [
        "channels.connection.created",
        "channels.connection.updated",
        "channels.connection.deleted",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SLACK, "kind": "irc"}, "kind"),
        ({**SLACK, "signing_secret": ""}, "signing_secret"),
        ({**SLACK, "bot_token": 5}, "bot_token"),
        ({**SLACK, "name": "x" * 101}, "name"),
        ({**SLACK, "colour": "red"}, "colour"),
        ({**SLACK, "is_active": "yes"}, "is_active"),
        (
            {
                "kind": "discord",
                "name": "d",
                "channel_id": "1",
                "bot_token": "t",
                "public_key": "zz",
            },
            "public_key",
        ),
        (
            {
                "kind": "telegram",
                "name": "t",
                "channel_id": "-1",
                "bot_token": "not-a-token",
                "signing_secret": "ok",
            },
            "bot_token",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field_and_writes_nothing(admin, body, field):
    response = admin.client().post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert field in response.json()["fields"]
    assert not ChannelConnection.objects.exists()


def test_a_second_connection_with_the_same_name_is_409(admin):
    created(admin)
    response = admin.client().post(URL, SLACK, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "CHANNEL_CONNECTION_EXISTS"


def test_non_admins_are_refused_and_writes_are_audited(admin, reviewer, operator):
    body = created(admin)
    url = f"{URL}/{body['connection_id']}"
    for member in (reviewer, operator):
        client = member.client()
        assert client.get(URL).status_code == 403
        assert client.get(url).json()["code"] == "CHANNEL_ACCESS_DENIED"
        assert client.post(URL, {**SLACK, "name": "mine"}, format="json").status_code == 403
        assert client.patch(url, {"name": "x"}, format="json").status_code == 403
        assert client.delete(url).status_code == 403
    assert ChannelConnection.objects.get().name == "approvals"
    assert len(events("automation.governance.denied")) == 6  # the writes, not the reads


def test_another_workspaces_connection_is_404(admin, outsider):
    body = created(admin)
    url = f"{URL}/{body['connection_id']}"
    client = outsider.client()
    missing = client.get(f"{URL}/999999").json()
    assert client.get(url).json() == {**missing, "connectionID": body["connection_id"]}
    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "x"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(URL).json()["count"] == 0
    assert admin.client().get(f"{URL}/{2**70}").status_code == 404


def test_anonymous_is_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401
