"""Standing approvals over the API (docs/agents.md, "Standing approvals"):
`GET|POST /api/approvals/standing`, `GET /api/approvals/standing/{id}`,
`POST /api/approvals/standing/{id}/revoke`.

Thin: parse, call the services or selectors of `approvals.standing`, render with
`standing_json`. The list is keyset-paginated like every list and costs the same number of
queries however long it is; its uses are listed by `GET /api/approvals/requests?standing_approval=`.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from approvals import standing
from approvals.api.request_views import ACTION_PATTERN
from automations.api.run_control_views import MAX_REASON, StrictInputSerializer
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field, page_response
from governance.api.schema import IDEMPOTENCY_ERROR_CODES, error_codes
from governance.idempotency import idempotent

MAX_LIMIT = 200


class StandingQuerySerializer(serializers.Serializer):
    active = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Only active (or inactive) ones."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=50)
    cursor = cursor_field()


class StandingInputSerializer(StrictInputSerializer):
    action = StrictCharField(max_length=200, help_text="The action, e.g. payments.send.")
    grantee = StrictCharField(max_length=150, help_text="The agent's (or service's) username.")
    constraints = serializers.DictField(
        help_text="A JSON Schema (Draft 2020-12) the request's arguments must satisfy."
    )
    policy = serializers.DictField(
        required=False,
        help_text="The most it approves: reviewer_eligibility, risk_tier, data_classes.",
    )
    expires_at = serializers.DateTimeField(help_text="When it ends (at most 90 days ahead).")
    max_uses = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    reason = StrictCharField(max_length=500, help_text="Why: recorded in the audit trail.")

    def validate_action(self, value: str) -> str:
        if not ACTION_PATTERN.fullmatch(value):
            raise serializers.ValidationError("Must be a dotted name such as payments.send.")
        return value

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Must not be blank.")
        return value


class RevokeInputSerializer(StrictInputSerializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=MAX_REASON)


class StandingSerializer(serializers.Serializer):
    """A standing approval (documents the JSON for the schema; `standing_json` renders)."""

    id = serializers.CharField()
    action = serializers.CharField()
    grantee = serializers.CharField()
    constraints = serializers.DictField()
    policy = serializers.DictField()
    reason = serializers.CharField()
    granted_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    max_uses = serializers.IntegerField(allow_null=True)
    use_count = serializers.IntegerField(help_text="Requests it approved.")
    active = serializers.BooleanField(help_text="Not revoked, not expired, not used up.")
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(allow_null=True)
    revoke_reason = serializers.CharField(allow_null=True)


class StandingListSerializer(serializers.Serializer):
    standing_approvals = StandingSerializer(many=True)
    count = serializers.IntegerField()
    next_cursor = next_cursor_field()


class StandingListView(WorkspaceAPIView):
    """The standing approvals the caller may see (every one of the workspace for a reviewer or
    admin, else those granted to or by the caller), newest first; `POST` grants one."""

    @extend_schema(
        parameters=[StandingQuerySerializer],
        responses=StandingListSerializer,
        operation_id="approvals_standing_list",
        extensions=error_codes(),
    )
    def get(self, request):
        query = parse_input(StandingQuerySerializer, request.query_params)
        rows = standing.standings_visible(request.actor)
        now = timezone.now()
        if query["active"] is not None:
            active = standing.active_condition(now)
            rows = rows.filter(active) if query["active"] else rows.exclude(active)
        return page_response(
            rows,
            query,
            key="standing_approvals",
            render=lambda grant: standing.standing_json(grant, now=now),
        )

    @extend_schema(
        request=StandingInputSerializer,
        responses={201: StandingSerializer},
        operation_id="approvals_standing_create",
        extensions=error_codes(*standing.ERROR_CODES, *IDEMPOTENCY_ERROR_CODES),
    )
    def post(self, request):
        """Grant a standing approval (Idempotency-Key: a retry returns the same grant)."""
        data = parse_input(StandingInputSerializer, request.data)

        def create() -> Response:
            grant = standing.standing_create(actor=request.actor, data=data)
            return Response(standing.standing_json(grant), status=status.HTTP_201_CREATED)

        return idempotent(request, create)


class StandingDetailView(WorkspaceAPIView):
    @extend_schema(
        responses=StandingSerializer,
        operation_id="approvals_standing_read",
        extensions=error_codes(standing.NOT_FOUND),
    )
    def get(self, request, standing_id: str):
        """One standing approval, with how many requests it approved."""
        grant = standing.standing_get(request.actor, standing_id)
        return Response(standing.standing_json(grant))


class StandingRevokeView(WorkspaceAPIView):
    @extend_schema(
        request=RevokeInputSerializer,
        responses=StandingSerializer,
        operation_id="approvals_standing_revoke",
        extensions=error_codes(*standing.ERROR_CODES),
    )
    def post(self, request, standing_id: str):
        """Revoke it now (its grantor or a workspace admin): it approves nothing more."""
        data = parse_input(RevokeInputSerializer, request.data)
        grant = standing.standing_revoke(
            actor=request.actor, standing_id=standing_id, reason=data.get("reason") or ""
        )
        return Response(standing.standing_json(grant))
