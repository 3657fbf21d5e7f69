"""`GET|POST /api/approvals/delegations`, `DELETE /api/approvals/delegations/{id}`: lending
one's review authority to another member for a period (`approvals.delegation`).

Thin: parse, call the service or the selector, render. The list is keyset-paginated like every
list (`?limit=`, `?cursor=`) and costs the same number of queries however long it is.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from approvals import delegation
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field, page_response
from governance.api.schema import error_codes

MAX_LIMIT = 200


class DelegationQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=50)
    cursor = cursor_field()


class DelegationInputSerializer(serializers.Serializer):
    delegate = StrictCharField(max_length=150, help_text="The member's username.")
    ends_at = serializers.DateTimeField(help_text="When the delegation ends (ISO 8601).")
    starts_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When it starts; now when omitted."
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=500)


class DelegationSerializer(serializers.Serializer):
    """A delegation (documents the JSON for the schema; `delegation.delegation_json` renders)."""

    id = serializers.IntegerField()
    delegator = serializers.CharField()
    delegate = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    reason = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField(help_text="In its period and not revoked.")
    revoked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class DelegationListSerializer(serializers.Serializer):
    delegations = DelegationSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class DelegationListView(WorkspaceAPIView):
    """The delegations the caller gave or received (every one of the workspace for a workspace
    admin), newest first; `POST` lends the caller's own review authority to another member."""

    @extend_schema(
        parameters=[DelegationQuerySerializer],
        responses=DelegationListSerializer,
        operation_id="approvals_delegations_list",
        extensions=error_codes(),
    )
    def get(self, request):
        query = parse_input(DelegationQuerySerializer, request.query_params)
        return page_response(
            delegation.delegations_visible(request.actor),
            query,
            key="delegations",
            render=delegation.delegation_json,
        )

    @extend_schema(
        request=DelegationInputSerializer,
        responses={201: DelegationSerializer},
        operation_id="approvals_delegations_create",
        extensions=error_codes(*delegation.ERROR_CODES),
    )
    def post(self, request):
        data = parse_input(DelegationInputSerializer, request.data)
        created = delegation.delegation_create(
            actor=request.actor,
            delegate=data["delegate"],
            ends_at=data["ends_at"],
            starts_at=data.get("starts_at"),
            reason=data.get("reason") or "",
        )
        return Response(delegation.delegation_json(created), status=status.HTTP_201_CREATED)


class DelegationDetailView(WorkspaceAPIView):
    @extend_schema(
        responses={204: None},
        parameters=[OpenApiParameter("delegation_id", int, OpenApiParameter.PATH)],
        operation_id="approvals_delegations_revoke",
        extensions=error_codes(*delegation.ERROR_CODES),
    )
    def delete(self, request, delegation_id: int):
        """Revoke a delegation now (its delegator, its delegate or a workspace admin)."""
        delegation.delegation_revoke(actor=request.actor, delegation_id=delegation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
