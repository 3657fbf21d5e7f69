"""Input serializers and JSON of schedules and webhook triggers (shape and types only: the
cron expression, time zone and inputs are checked by `automations.triggers`)."""

from __future__ import annotations

from rest_framework import serializers

from automations.api.run_control_views import StrictInputSerializer
from automations.api.serializers import to_ms
from automations.models import RunStatus, Schedule, TriggerType, WebhookTrigger
from automations.triggers.webhooks import hook_url
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field

CRON_HELP = (
    "Five fields (minute hour day month weekday), six with seconds first, or a macro such as "
    "@daily; evaluated in `timezone`."
)


class ScheduleInputSerializer(StrictInputSerializer):
    cron = StrictCharField(max_length=200, help_text=CRON_HELP)
    timezone = StrictCharField(
        required=False, max_length=64, help_text="An IANA time zone (default UTC)."
    )
    inputs = serializers.DictField(
        required=False, help_text="The inputs of every run it starts (checked: `input_schema`)."
    )
    enabled = serializers.BooleanField(required=False)


class TriggerListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    cursor = cursor_field()


class WebhookTriggerInputSerializer(StrictInputSerializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200)


class ScheduleSerializer(serializers.Serializer):
    """Documents the schedule JSON; `schedule_json` produces it."""

    schedule_id = serializers.CharField()
    automation_id = serializers.CharField()
    cron = serializers.CharField()
    timezone = serializers.CharField()
    inputs = serializers.DictField(child=serializers.JSONField())
    enabled = serializers.BooleanField()
    next_fire_at_ms = serializers.IntegerField(
        allow_null=True, help_text="When it fires next (null while disabled)."
    )
    last_fired_at_ms = serializers.IntegerField(allow_null=True)
    last_run_id = serializers.CharField(allow_null=True)
    created_by = serializers.CharField()
    created_at_ms = serializers.IntegerField()
    updated_at_ms = serializers.IntegerField()


class ScheduleListSerializer(serializers.Serializer):
    schedules = ScheduleSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class WebhookTriggerSerializer(serializers.Serializer):
    """Documents the webhook trigger JSON; `webhook_trigger_json` produces it."""

    trigger_id = serializers.CharField()
    automation_id = serializers.CharField()
    name = serializers.CharField()
    active = serializers.BooleanField(help_text="False once revoked.")
    created_by = serializers.CharField()
    created_at_ms = serializers.IntegerField()
    rotated_at_ms = serializers.IntegerField(allow_null=True)
    revoked_at_ms = serializers.IntegerField(allow_null=True)
    last_used_at_ms = serializers.IntegerField(allow_null=True)


class WebhookTriggerSecretSerializer(WebhookTriggerSerializer):
    """Create and rotate only: the secret, shown this once (only its digest is stored)."""

    token = serializers.CharField()
    url = serializers.CharField(help_text="POST a JSON object here to start a run.")


class WebhookTriggerListSerializer(serializers.Serializer):
    webhook_triggers = WebhookTriggerSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class HookAcceptedSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    run_id = serializers.CharField()
    automation_id = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    trigger_type = serializers.ChoiceField(choices=TriggerType.choices)


def schedule_json(schedule: Schedule, automation_id: str) -> dict:
    return {
        "schedule_id": schedule.schedule_id,
        "automation_id": automation_id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "inputs": schedule.inputs,
        "enabled": schedule.enabled,
        "next_fire_at_ms": to_ms(schedule.next_fire_at),
        "last_fired_at_ms": to_ms(schedule.last_fired_at),
        "last_run_id": schedule.last_run_id or None,
        "created_by": schedule.created_by.username,
        "created_at_ms": to_ms(schedule.created_at),
        "updated_at_ms": to_ms(schedule.updated_at),
    }


def webhook_trigger_json(trigger: WebhookTrigger, automation_id: str, token: str = "") -> dict:
    body = {
        "trigger_id": trigger.trigger_id,
        "automation_id": automation_id,
        "name": trigger.name,
        "active": trigger.revoked_at is None,
        "created_by": trigger.created_by.username,
        "created_at_ms": to_ms(trigger.created_at),
        "rotated_at_ms": to_ms(trigger.rotated_at),
        "revoked_at_ms": to_ms(trigger.revoked_at),
        "last_used_at_ms": to_ms(trigger.last_used_at),
    }
    if token:
        body.update(token=token, url=hook_url(token))
    return body
