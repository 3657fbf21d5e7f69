"""Audit endpoints: a workspace admin reads its chain's events and verifies the chain.

Both endpoints are scoped to the caller's workspace (`request.actor.workspace`): there is no
parameter naming another workspace, so another tenant's chain cannot even be addressed.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from governance.api.base import WorkspaceAPIView
from governance.api.pagination import list_json, next_cursor_field
from governance.audit import verify_chain
from governance.models import AuditEvent
from governance.policy import WorkspaceAction, authorize_workspace
from governance.selectors import audit_events_page

MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1
DEFAULT_LIMIT = 100


# --- Input --------------------------------------------------------------------------------


class AuditEventsQuerySerializer(serializers.Serializer):
    event_type = serializers.CharField(required=False, max_length=100)
    actor_id = serializers.CharField(required=False, max_length=200)
    cursor = serializers.RegexField(
        r"^[1-9][0-9]{0,18}\Z",
        required=False,
        help_text="`next_cursor` of the previous page.",
    )
    since_seq = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_SEQ,
        help_text="Alias of `cursor` (kept for older clients): only events with seq >= this.",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )

    def validate(self, attrs):
        cursor = attrs.pop("cursor", None)
        if cursor is not None:
            if attrs.get("since_seq", int(cursor)) != int(cursor):
                raise serializers.ValidationError({"since_seq": ["Differs from cursor."]})
            attrs["since_seq"] = int(cursor)
        return attrs


# --- Output (documents the JSON for the schema; `audit_event_json` renders it) --------------


class AuditActorSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="human | agent | service | system")
    actor_id = serializers.CharField()


class AuditEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    event_type = serializers.CharField()
    actor = AuditActorSerializer()
    payload = serializers.DictField()
    created_at_ms = serializers.IntegerField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()
    key_id = serializers.CharField()


class AuditEventListSerializer(serializers.Serializer):
    events = AuditEventSerializer(many=True)
    count = serializers.IntegerField(help_text="Number of events in this response.")
    next_cursor = next_cursor_field()


class AuditChainHeadSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField(allow_null=True)


class AuditChainBreakSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The seq at which the chain stops verifying.")
    event_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()


class AuditVerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    workspace = serializers.CharField()
    events = serializers.IntegerField(help_text="Events read, up to and including a break.")
    head = AuditChainHeadSerializer(
        required=False, help_text="The verified head; empty when the chain is broken."
    )
    first_break = AuditChainBreakSerializer(required=False, help_text="Present when not ok.")


class AuditErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    code = serializers.CharField()


ERROR_RESPONSES = {401: AuditErrorSerializer, 403: AuditErrorSerializer}


# --- Rendering -----------------------------------------------------------------------------


def audit_event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "event_type": event.event_type,
        "actor": {"kind": event.actor_kind, "actor_id": event.actor_id},
        "payload": event.payload,
        "created_at_ms": int(event.created_at.timestamp() * 1000),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "key_id": event.key_id,
    }


# --- Views ---------------------------------------------------------------------------------


class AuditEventListView(WorkspaceAPIView):
    """The workspace's audit events in chain order, filtered and seq-paginated (admins only)."""

    @extend_schema(
        parameters=[AuditEventsQuerySerializer],
        responses={200: AuditEventListSerializer, 400: AuditErrorSerializer, **ERROR_RESPONSES},
        operation_id="audit_events_list",
        tags=["audit"],
    )
    def get(self, request):
        authorize_workspace(request.actor, WorkspaceAction.READ_AUDIT, audit=False)
        query = AuditEventsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events, next_cursor = audit_events_page(request.actor, **query.validated_data)
        items = [audit_event_json(event) for event in events]
        return Response(
            list_json("events", items, None if next_cursor is None else str(next_cursor))
        )


class AuditVerifyView(WorkspaceAPIView):
    """Verify the workspace's whole chain and report the first broken event (admins only)."""

    @extend_schema(
        responses={200: AuditVerifySerializer, **ERROR_RESPONSES},
        operation_id="audit_verify",
        tags=["audit"],
    )
    def get(self, request):
        authorize_workspace(request.actor, WorkspaceAction.READ_AUDIT, audit=False)
        return Response(verify_chain(request.actor.workspace).as_dict())
