"""Automation pause and resume: `POST /api/automations/v2/{id}/pause | resume`.

Thin: parse a strict body, call `automations.automation_control`, render the automation.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from automations import automation_control, selectors
from automations.api.serializers import AutomationSerializer, automation_json
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.fields import StrictCharField


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: DRF's BooleanField would also take "yes", "1", 0 and "off"."""

    default_error_messages = {"invalid": "Must be a boolean."}

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid")


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo must not be silently ignored)."""

    def validate(self, attrs):
        if isinstance(self.initial_data, dict):
            unknown = set(self.initial_data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in sorted(unknown)}
                )
        return attrs


class AutomationPauseInputSerializer(StrictInputSerializer):
    reason = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=2000,
        help_text='Recorded as each paused run\'s pause_reason; default "paused by operator".',
    )


class AutomationResumeInputSerializer(StrictInputSerializer):
    resume_runs = StrictBooleanField(
        required=False,
        default=False,
        help_text="Also queue again the runs the automation pause paused (and that are still "
        "paused by it).",
    )


def _envelope(name: str, count_field: str):
    return inline_serializer(
        name,
        {
            "ok": serializers.BooleanField(),
            "automation": AutomationSerializer(),
            count_field: serializers.IntegerField(),
        },
    )


class AutomationPauseView(WorkspaceAPIView):
    """Pause the automation and every queued and running run of it (operate permission)."""

    @extend_schema(
        request=AutomationPauseInputSerializer,
        responses=_envelope("AutomationPaused", "pausedRuns"),
        operation_id="automations_pause",
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_input(AutomationPauseInputSerializer, request.data)
        result = automation_control.automation_pause(
            actor=request.actor, automation=automation, reason=data.get("reason")
        )
        return Response(
            {
                "ok": True,
                "automation": automation_json(result.automation),
                "pausedRuns": result.runs,
            }
        )


class AutomationResumeView(WorkspaceAPIView):
    """Make the automation active; with `resume_runs`, resume the runs its pause holds."""

    @extend_schema(
        request=AutomationResumeInputSerializer,
        responses=_envelope("AutomationResumed", "resumedRuns"),
        operation_id="automations_resume",
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_input(AutomationResumeInputSerializer, request.data)
        result = automation_control.automation_resume(
            actor=request.actor, automation=automation, resume_runs=data["resume_runs"]
        )
        return Response(
            {
                "ok": True,
                "automation": automation_json(result.automation),
                "resumedRuns": result.runs,
            }
        )
