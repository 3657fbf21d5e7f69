"""Approval requests over the API (docs/agents.md): `POST /api/approvals/requests`,
`GET /api/approvals/requests[/{id}[?wait=]]`, `POST /api/approvals/requests/{id}/decide`.

Thin: parse the body or query, call the services of `approvals.requests` (create, decide, wait)
or the selectors (list, read), render with `approvals.request_json`. Writes take an
`Idempotency-Key`.
"""

from __future__ import annotations

import re

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from approvals.api.views import GATE_ERROR_CODES
from approvals.models import GateStatus
from approvals.request_answers import ANSWER_NOT_ALLOWED, RESPONSE_INVALID
from approvals.request_edits import EDIT_INVALID, NOT_EDITABLE
from approvals.request_json import STATUSES, request_json
from approvals.requests import MAX_WAIT_S, request_create, request_decide, request_wait
from approvals.selectors import request_get, requests_visible
from automations.api.run_control_views import MAX_REASON, StrictInputSerializer
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.fields import StrictCharField
from governance.api.pagination import cursor_field, next_cursor_field, page_response
from governance.api.schema import IDEMPOTENCY_ERROR_CODES, error_codes
from governance.idempotency import idempotent

ACTION_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
NOT_FOUND = "APPROVAL_REQUEST_NOT_FOUND"
DECIDE_ERROR_CODES = (
    *GATE_ERROR_CODES,
    NOT_FOUND,
    ANSWER_NOT_ALLOWED,
    RESPONSE_INVALID,
    NOT_EDITABLE,
    EDIT_INVALID,
)


class StrictNestedSerializer(serializers.Serializer):
    """A nested object of a body that refuses keys it does not declare."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields), key=str)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class LinkSerializer(StrictNestedSerializer):
    title = StrictCharField(max_length=200)
    url = serializers.URLField(max_length=2000)


class ContextSerializer(StrictNestedSerializer):
    text = StrictCharField(required=False, allow_blank=True, max_length=5000)
    links = LinkSerializer(many=True, required=False, max_length=20)


class EditableSerializer(StrictNestedSerializer):
    paths = serializers.ListField(
        child=StrictCharField(max_length=200), min_length=1, max_length=100
    )
    schema = serializers.DictField(required=False, allow_null=True)


class RequestCreateInputSerializer(StrictInputSerializer):
    """The body of `POST /api/approvals/requests` (docs/agents.md)."""

    action = StrictCharField(max_length=200, help_text="A dotted name, e.g. payments.send.")
    arguments = serializers.DictField(help_text="The action's proposed arguments.")
    summary = StrictCharField(max_length=300)
    context = ContextSerializer(required=False)
    policy = serializers.DictField(
        required=False,
        help_text="reviewer_eligibility, risk_tier, data_classes (as a gate) and rules.",
    )
    expiry = serializers.DictField(required=False, allow_null=True)
    response_schema = serializers.DictField(required=False, allow_null=True)
    editable = EditableSerializer(required=False, allow_null=True)

    def validate_action(self, value: str) -> str:
        if not ACTION_PATTERN.fullmatch(value):
            raise serializers.ValidationError("Must be a dotted name such as payments.send.")
        return value

    def validate_summary(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Must not be blank.")
        return value


class RequestDecideInputSerializer(StrictInputSerializer):
    decision = StrictCharField(max_length=64, help_text="approve, rework or cancel.")
    reason = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_REASON
    )
    arguments = serializers.DictField(
        required=False, help_text="Approve with edits: values for the editable paths."
    )
    response = serializers.JSONField(
        required=False, help_text="The answer, when the request has a response_schema."
    )


class RequestListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUSES, required=False)
    standing_approval = StrictCharField(
        required=False,
        max_length=64,
        help_text="Only the requests it approved.",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )
    cursor = cursor_field()


class RequestWaitQuerySerializer(serializers.Serializer):
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_WAIT_S,
        default=0,
        help_text="Seconds to wait while the request is pending (0..60).",
    )


class DecisionSerializer(serializers.Serializer):
    decision = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    decided_by = serializers.DictField(allow_null=True)
    decided_at = serializers.CharField()
    surface = serializers.CharField()
    edited = serializers.BooleanField()
    diff = serializers.ListField(child=serializers.DictField())
    digest = serializers.CharField(
        allow_null=True, help_text="SHA-256 binding what was reviewed and what was approved."
    )
    standing_approval = serializers.CharField(
        allow_null=True,
        help_text="The standing approval that approved it when it was made (surface standing).",
    )


class ApprovalRequestSerializer(serializers.Serializer):
    """An approval request (documents the JSON for the schema)."""

    request_id = serializers.CharField()
    status = serializers.ChoiceField(choices=STATUSES)
    action = serializers.CharField()
    arguments = serializers.DictField(help_text="As proposed.")
    summary = serializers.CharField()
    context = serializers.DictField()
    policy = serializers.DictField(help_text="As submitted (normalised), rules included.")
    effective_policy = serializers.DictField(help_text="The policy of the proposed arguments.")
    expiry = serializers.DictField()
    response_schema = serializers.DictField(allow_null=True)
    editable = serializers.DictField(allow_null=True)
    requested_by = serializers.DictField(allow_null=True)
    created_at = serializers.CharField()
    expires_at = serializers.CharField()
    decision = DecisionSerializer(allow_null=True)
    approved_arguments = serializers.DictField(
        allow_null=True, help_text="What to act on: set only when approved."
    )
    response = serializers.JSONField(allow_null=True)
    run_id = serializers.CharField()
    gate_id = serializers.CharField(help_text="The approval gate (`approval_request_id`).")
    url = serializers.URLField(help_text="The approval page.")


class ApprovalRequestListSerializer(serializers.Serializer):
    requests = ApprovalRequestSerializer(many=True)
    count = serializers.IntegerField(help_text="Number of requests in this response.")
    next_cursor = next_cursor_field()


def _status_condition(status: str) -> Q:
    """Rows of one status (`request_json.request_status`, as a query)."""
    now = timezone.now()
    open_ = Q(gate__status=GateStatus.OPEN)
    decided = Q(gate__status=GateStatus.DECIDED)
    return {
        "pending": open_ & Q(gate__expires_at__gt=now),
        "approved": decided & Q(decision__decision="approve"),
        "rework": decided & Q(decision__decision="rework"),
        "cancelled": (decided & Q(decision__decision="cancel"))
        | Q(gate__status=GateStatus.SUPERSEDED),
        "expired": Q(gate__status=GateStatus.EXPIRED) | (open_ & Q(gate__expires_at__lte=now)),
    }[status]


class ApprovalRequestsView(WorkspaceAPIView):
    """Ask humans to approve an action (POST); list the requests the caller may see (GET)."""

    @extend_schema(
        parameters=[RequestListQuerySerializer],
        responses=ApprovalRequestListSerializer,
        operation_id="approval_requests_list",
        extensions=error_codes(),
    )
    def get(self, request):
        """Newest first, keyset-paginated; an agent sees only its own requests."""
        query = parse_input(RequestListQuerySerializer, request.query_params)
        rows = requests_visible(request.actor)
        if query.get("status"):
            rows = rows.filter(_status_condition(query["status"]))
        if query.get("standing_approval"):
            rows = rows.filter(standing_approval_id=query["standing_approval"])
        now = timezone.now()
        return page_response(rows, query, key="requests", render=lambda row: request_json(row, now))

    @extend_schema(
        request=RequestCreateInputSerializer,
        responses={201: ApprovalRequestSerializer},
        operation_id="approval_requests_create",
        extensions=error_codes(
            "APPROVAL_REQUEST_FORBIDDEN", "AUTOMATION_V2_NOT_ACTIVE", *IDEMPOTENCY_ERROR_CODES
        ),
    )
    def post(self, request):
        """Open an approval request (Idempotency-Key: a retry returns the same request)."""
        body = parse_input(RequestCreateInputSerializer, request.data)

        def create() -> Response:
            created = request_create(actor=request.actor, data=body)
            return Response(request_json(created), status=201)

        return idempotent(request, create)


class ApprovalRequestView(WorkspaceAPIView):
    """One request; `?wait=` long-polls while it is pending."""

    @extend_schema(
        parameters=[RequestWaitQuerySerializer],
        responses=ApprovalRequestSerializer,
        operation_id="approval_requests_read",
        extensions=error_codes(NOT_FOUND),
    )
    def get(self, request, request_id: str):
        query = parse_input(RequestWaitQuerySerializer, request.query_params)
        found = request_wait(actor=request.actor, request_id=request_id, timeout=query["wait"])
        return Response(request_json(found))


class ApprovalRequestDecideView(WorkspaceAPIView):
    """Approve (optionally with edits and the form's response), rework or cancel a request."""

    @extend_schema(
        request=RequestDecideInputSerializer,
        responses=ApprovalRequestSerializer,
        operation_id="approval_requests_decide",
        extensions=error_codes(*DECIDE_ERROR_CODES),
    )
    def post(self, request, request_id: str):
        body = parse_input(RequestDecideInputSerializer, request.data)

        def decide() -> Response:
            decided = request_decide(
                actor=request.actor,
                request=request_get(request.actor, request_id),
                decision=body["decision"],
                reason=body.get("reason"),
                arguments=body.get("arguments"),
                response=body.get("response"),
                source="api",
            )
            return Response(request_json(decided))

        return idempotent(request, decide)
