"""`GET /api/approvals/pending`: the open gates the caller may decide.

Thin: validate `?limit=` and `?cursor=`, call `approvals.selectors.gates_pending` (tenant and
permissions in the query, before the page), render each gate. The number of queries does not
depend on how many gates are listed, and the list never writes.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from approvals.models import Gate
from approvals.policy import GatePolicy, approval_barred_by
from approvals.quorum import approved_by
from approvals.selectors import gates_pending
from automations.api.run_json import approval_url
from automations.api.run_schema import QuorumProgressSchema
from automations.api.serializers import to_ms
from governance.actors import Actor
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import cursor_field, next_cursor_field, page_response
from governance.api.schema import error_codes

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class PendingQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )
    cursor = cursor_field()


class PendingApprovalSerializer(serializers.Serializer):
    """One open gate (documents the JSON for the schema)."""

    approval_request_id = serializers.CharField(help_text="The gate id (decide with it).")
    transition_id = serializers.CharField()
    run_id = serializers.CharField()
    automation_id = serializers.CharField()
    node_id = serializers.CharField()
    round = serializers.IntegerField()
    title = serializers.CharField()
    instructions = serializers.CharField(allow_blank=True)
    decisions = serializers.ListField(child=serializers.CharField())
    policy = serializers.DictField()
    requested_at_ms = serializers.IntegerField()
    expires_at_ms = serializers.IntegerField()
    requested_by = serializers.CharField(allow_null=True)
    reminder_count = serializers.IntegerField()
    escalated = serializers.BooleanField()
    approve_refused = serializers.CharField(
        allow_null=True,
        help_text=(
            "The separation-of-duties rule that bars the caller from approving this gate "
            "(they may still rework or cancel it), else null."
        ),
    )
    lacks_independent_reviewer = serializers.BooleanField(
        help_text="When the gate opened, nobody but the run's accountable people could approve it."
    )
    approval_url = serializers.URLField()
    quorum = QuorumProgressSchema(
        allow_null=True,
        help_text="The approvals this opening has so far, when its policy has a quorum; else null.",
    )
    you_approved = serializers.BooleanField(
        help_text="You approved this opening already (yourself or for a delegator): others must."
    )


class PendingApprovalListSerializer(serializers.Serializer):
    approvals = PendingApprovalSerializer(many=True)
    count = serializers.IntegerField(help_text="Number of approvals in this response.")
    next_cursor = next_cursor_field()


def pending_json(gate: Gate, actor: Actor) -> dict[str, Any]:
    barred = approval_barred_by(actor.user, run=gate.run, policy=GatePolicy.of(gate.policy))
    return {
        "approval_request_id": gate.pk,
        "transition_id": gate.transition_id,
        "run_id": gate.run.run_id,
        "automation_id": gate.run.automation.automation_id,
        "node_id": gate.node_id,
        "round": gate.round,
        "title": gate.title,
        "instructions": gate.instructions,
        "decisions": gate.decisions,
        "policy": gate.policy,
        "requested_at_ms": to_ms(gate.requested_at),
        "expires_at_ms": to_ms(gate.expires_at),
        "requested_by": gate.requested_by.username if gate.requested_by else None,
        "reminder_count": gate.reminder_count,
        "escalated": gate.escalated_at is not None,
        "approve_refused": barred.name if barred is not None else None,
        "lacks_independent_reviewer": gate.lacks_independent_reviewer,
        "approval_url": approval_url(gate.pk),
        "quorum": gate.quorum or None,
        "you_approved": approved_by(gate.quorum, actor.user.username),
    }


class PendingApprovalsView(WorkspaceAPIView):
    """Open gates of the caller's workspace the caller may decide, newest first, keyset-paginated
    (`?limit=` 1..200, default 50; `?cursor=`). Agents get an empty list (only humans decide
    gates)."""

    @extend_schema(
        parameters=[PendingQuerySerializer],
        responses=PendingApprovalListSerializer,
        operation_id="approvals_pending",
        extensions=error_codes(),
    )
    def get(self, request):
        query = parse_input(PendingQuerySerializer, request.query_params)
        return page_response(
            gates_pending(request.actor),
            query,
            key="approvals",
            render=lambda gate: pending_json(gate, request.actor),
            time_field="requested_at",
        )
