"""Input serializers (shape and types only) and the automation's JSON representation.

Semantic checks of the flow live in `automations.flow`; these serializers only make sure each
field has the right JSON type so a wrong type is a 400 INVALID_REQUEST naming the field.
"""

from __future__ import annotations

from rest_framework import serializers

from automations.models import Automation, AutomationStatus
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field
from governance.policy import GRANTABLE


def to_ms(value) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


class AutomationInputSerializer(serializers.Serializer):
    automation_id = StrictCharField(required=False, max_length=128)
    name = StrictCharField(max_length=200)
    description = StrictCharField(required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=AutomationStatus.choices, required=False)
    agents = serializers.ListField(child=serializers.DictField(), required=False)
    flow = serializers.DictField(required=False)
    execution = serializers.DictField(required=False)
    workspace_root = StrictCharField(required=False, allow_blank=True, max_length=1024)
    handoff_config = serializers.DictField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False)
    input_schema = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="A JSON Schema (Draft 2020-12) the `inputs` of `run_now` must satisfy.",
    )
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="PATCH precondition: the version you last read."
    )

    def validate(self, attrs):
        unknown = (
            set(self.initial_data) - set(self.fields)
            if isinstance(self.initial_data, dict)
            else set()
        )
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in sorted(unknown)}
            )
        return attrs


class AutomationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AutomationStatus.choices, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    cursor = cursor_field()


class GrantListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
    cursor = cursor_field()


class GrantInputSerializer(serializers.Serializer):
    user = StrictCharField(required=False, max_length=150)
    group = StrictCharField(required=False, max_length=150)
    permission = serializers.ChoiceField(choices=sorted(GRANTABLE))


class AutomationSerializer(serializers.Serializer):
    """Documents the automation JSON for the schema; `automation_json` produces it."""

    automation_id = serializers.CharField()
    workspace = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=AutomationStatus.choices)
    agents = serializers.ListField(child=serializers.DictField())
    flow = serializers.DictField()
    execution = serializers.DictField()
    workspace_root = serializers.CharField()
    handoff_config = serializers.DictField(allow_null=True)
    metadata = serializers.DictField()
    input_schema = serializers.DictField(allow_null=True)
    created_by = serializers.CharField()
    version = serializers.IntegerField()
    created_at_ms = serializers.IntegerField()
    updated_at_ms = serializers.IntegerField()
    warnings = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text=(
            "Create, update and read of one automation: problems that do not make it invalid, "
            "`{code, node_id, message}` (e.g. GATE_NO_INDEPENDENT_REVIEWER)."
        ),
    )


class AutomationListSerializer(serializers.Serializer):
    automations = AutomationSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class GrantSerializer(serializers.Serializer):
    grant_id = serializers.CharField()
    permission = serializers.CharField()
    user = serializers.CharField(allow_null=True)
    group = serializers.CharField(allow_null=True)


class GrantListSerializer(serializers.Serializer):
    grants = GrantSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


def automation_json(automation: Automation) -> dict:
    return {
        "automation_id": automation.automation_id,
        "workspace": automation.workspace.path,
        "name": automation.name,
        "description": automation.description,
        "status": automation.status,
        "agents": automation.agents,
        "flow": automation.flow,
        "execution": automation.execution,
        "workspace_root": automation.workspace_root,
        "handoff_config": automation.handoff_config,
        "metadata": automation.metadata,
        "input_schema": automation.input_schema,
        "created_by": automation.created_by.username,
        "version": automation.version,
        "created_at_ms": to_ms(automation.created_at),
        "updated_at_ms": to_ms(automation.updated_at),
    }
