"""`GET /api/automations/v2/{id}/handoffs`: the automation's handoff artifacts, as the original.

Thin: the view permission on the automation (404 when invisible), then
`automations.handoffs.listing.handoff_listing`, which reads the dirs confined to
`workspace_root` (409 `AUTOMATION_V2_HANDOFF_DIR_UNSAFE` when one no longer resolves inside it).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from automations import selectors
from automations.handoffs.listing import handoff_listing
from governance.api.base import WorkspaceAPIView

# --- Output (documents the JSON for the schema; `handoff_listing` produces it) --------------


class HandoffArtifactSerializer(serializers.Serializer):
    handoff_id = serializers.CharField()
    source_automation_id = serializers.CharField()
    source_run_id = serializers.CharField()
    source_node_id = serializers.CharField()
    target_automation_id = serializers.CharField()
    artifact_type = serializers.CharField()
    created_at_ms = serializers.IntegerField()
    content_path = serializers.CharField(required=False)
    content_digest = serializers.CharField(required=False)
    metadata = serializers.JSONField(required=False)
    consumed_by_run_id = serializers.CharField(required=False)
    consumed_by_automation_id = serializers.CharField(required=False)
    consumed_at_ms = serializers.IntegerField(required=False)


class HandoffConfigSerializer(serializers.Serializer):
    inbox_dir = serializers.CharField()
    approved_dir = serializers.CharField()
    archived_dir = serializers.CharField()
    auto_approve = serializers.BooleanField()


class HandoffCountsSerializer(serializers.Serializer):
    inbox = serializers.IntegerField()
    approved = serializers.IntegerField()
    archived = serializers.IntegerField()
    total = serializers.IntegerField()


class HandoffTruncatedSerializer(serializers.Serializer):
    inbox = serializers.BooleanField()
    approved = serializers.BooleanField()
    archived = serializers.BooleanField()


class HandoffListSerializer(serializers.Serializer):
    automation_id = serializers.CharField()
    workspace_root = serializers.CharField(
        allow_null=True, help_text="null when the automation has none (then no dirs are read)."
    )
    handoff_config = HandoffConfigSerializer(help_text="The effective config (defaults filled).")
    inbox = HandoffArtifactSerializer(many=True)
    approved = HandoffArtifactSerializer(many=True)
    archived = HandoffArtifactSerializer(many=True)
    counts = HandoffCountsSerializer(help_text="Artifacts returned per dir.")
    skipped = HandoffCountsSerializer(
        help_text="`*.json` entries within the 512-entry cap that are not valid artifacts."
    )
    truncated = HandoffTruncatedSerializer(help_text="Whether a dir has more than 512 entries.")


class HandoffErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    code = serializers.CharField()
    automationID = serializers.CharField()  # the original's key
    errors = serializers.ListField(child=serializers.DictField(), required=False)


class AutomationHandoffsView(WorkspaceAPIView):
    """The inbox, approved and archived handoff artifacts of one automation (view permission)."""

    @extend_schema(
        responses={
            200: HandoffListSerializer,
            404: HandoffErrorSerializer,
            409: HandoffErrorSerializer,
        },
        operation_id="automation_handoffs_list",
    )
    def get(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        return Response(handoff_listing(automation))
