"""Input and output shapes of `/api/channels/…`. Secrets are write-only: accepted on input,
never rendered; the output says only whether one is set (`has_bot_token`, `has_signing_secret`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from automations.api.run_control_views import StrictInputSerializer
from channels.models import Assurance, ChannelConnection, ChannelKind, ChatIdentity
from channels.services import MAX_SECRET
from governance.api.fields import StrictCharField


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _text(name: str, **kwargs) -> StrictCharField:
    field = ChannelConnection._meta.get_field(name)
    return StrictCharField(
        max_length=field.max_length, allow_blank=True, help_text=field.help_text, **kwargs
    )


class ConnectionUpdateInputSerializer(StrictInputSerializer):
    """Any subset; `kind` cannot change. A blank or absent secret keeps the stored one."""

    name = _text("name", required=False)
    channel_id = _text("channel_id", required=False)
    external_team_id = _text("external_team_id", required=False)
    application_id = _text("application_id", required=False)
    public_key = _text("public_key", required=False)
    bot_token = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_SECRET, write_only=True
    )
    signing_secret = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=MAX_SECRET,
        write_only=True,
        help_text="Slack signing secret or Telegram webhook secret. A Slack connection created "
        "without one uses the deployment's Slack app (FLOWGATE_SLACK_SIGNING_SECRET).",
    )
    is_active = StrictBooleanField(required=False)


class ConnectionCreateInputSerializer(ConnectionUpdateInputSerializer):
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = _text("name")
    channel_id = _text("channel_id")


class ConnectionSerializer(serializers.Serializer):
    connection_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField()
    workspace = serializers.CharField(help_text="<org>/<workspace>")
    channel_id = serializers.CharField()
    external_team_id = serializers.CharField()
    application_id = serializers.CharField()
    public_key = serializers.CharField()
    has_bot_token = serializers.BooleanField()
    has_signing_secret = serializers.BooleanField()
    assurance = serializers.ChoiceField(
        choices=Assurance.choices,
        help_text="platform: only the chat platform or the deployment's operator can sign its "
        "requests (Discord; Slack through the deployment's app), so a click may decide any gate; "
        "workspace: a workspace admin holds its secret, so an approve of a consequential gate "
        "needs the approval page.",
    )
    is_active = serializers.BooleanField()
    created_at_ms = serializers.IntegerField()
    updated_at_ms = serializers.IntegerField()


class ConnectionListSerializer(serializers.Serializer):
    connections = ConnectionSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)


class IdentityInputSerializer(StrictInputSerializer):
    user = StrictCharField(max_length=150, help_text="Username of a member of the workspace.")
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    external_team_id = StrictCharField(
        max_length=128,
        required=False,
        allow_blank=True,
        help_text="Slack team id; empty for Discord and Telegram (their user ids are global).",
    )
    external_user_id = StrictCharField(max_length=128)
    display_name = StrictCharField(max_length=200, required=False, allow_blank=True)


class IdentitySerializer(serializers.Serializer):
    identity_id = serializers.IntegerField()
    user = serializers.CharField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    external_team_id = serializers.CharField()
    external_user_id = serializers.CharField()
    display_name = serializers.CharField()
    confirmed = serializers.BooleanField(
        help_text="Proven by the user on the link page; only a confirmed link decides."
    )
    connection_id = serializers.IntegerField(
        allow_null=True, help_text="The connection the user proved the link through."
    )
    confirmed_at_ms = serializers.IntegerField(allow_null=True)
    created_at_ms = serializers.IntegerField()


class IdentityListSerializer(serializers.Serializer):
    identities = IdentitySerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)


class ListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(required=False, max_length=200)


def _ms(value) -> int:
    return int(value.timestamp() * 1000)


def connection_json(connection: ChannelConnection) -> dict[str, Any]:
    return {
        "connection_id": connection.pk,
        "kind": connection.kind,
        "name": connection.name,
        "workspace": connection.workspace.path,
        "channel_id": connection.channel_id,
        "external_team_id": connection.external_team_id,
        "application_id": connection.application_id,
        "public_key": connection.public_key,
        "has_bot_token": bool(connection.bot_token),
        "has_signing_secret": bool(connection.signing_secret),
        "assurance": connection.assurance,
        "is_active": connection.is_active,
        "created_at_ms": _ms(connection.created_at),
        "updated_at_ms": _ms(connection.updated_at),
    }


def identity_json(identity: ChatIdentity) -> dict[str, Any]:
    return {
        "identity_id": identity.pk,
        "user": identity.user.username,
        "kind": identity.kind,
        "external_team_id": identity.external_team_id,
        "external_user_id": identity.external_user_id,
        "display_name": identity.display_name,
        "confirmed": identity.is_confirmed,
        "connection_id": identity.connection_id,
        "confirmed_at_ms": _ms(identity.confirmed_at) if identity.confirmed_at else None,
        "created_at_ms": _ms(identity.created_at),
    }
