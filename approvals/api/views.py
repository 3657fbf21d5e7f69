"""Gate decisions over the API: `POST /api/automations/v2/runs/{run_id}/gate`.

Thin: parse the body, find the run in the caller's workspace (404 otherwise), call the one
decision service (`approvals.decisions.gate_decide`), render the run from the rows the service
wrote and the history it read under its lock (no second read of the run).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from approvals.decisions import EXPIRED, GUARD_DENIED, NOT_AWAITING, Outcome, gate_decide
from approvals.models import Surface
from approvals.policy import MESSAGES
from approvals.quorum import ALREADY_APPROVED
from approvals.selectors import run_to_decide
from automations.api import error_codes as codes
from automations.api.run_control_views import MAX_REASON, StrictInputSerializer
from automations.api.run_json import run_json
from automations.api.run_schema import run_schema_field
from automations.models import Run
from governance.api.base import WorkspaceAPIView, parse_optional_body
from governance.api.fields import StrictCharField
from governance.api.schema import IDEMPOTENCY_ERROR_CODES, error_codes
from governance.errors import InvalidRequest
from governance.idempotency import idempotent

MAX_GATE_ID = 200
# Everything a decision may answer: the run and gate lookups, the decision service's refusals
# (`approvals.decisions`, `approvals.policy`) and the idempotency store.
GATE_ERROR_CODES = (
    *codes.ACCESS,
    *codes.RUN_READ,
    "AUTOMATION_V2_GATE_REQUIRES_HUMAN",
    "AUTOMATION_V2_RUN_GATE_MISSING",
    "AUTOMATION_V2_GATE_INVALID_DECISION",
    "AUTOMATION_V2_GATE_DECISION_NOT_ALLOWED",
    *MESSAGES,
    EXPIRED,
    NOT_AWAITING,
    GUARD_DENIED,
    ALREADY_APPROVED,
    *IDEMPOTENCY_ERROR_CODES,
)


class GateDecisionInputSerializer(StrictInputSerializer):
    """`{decision, reason?, approval_request_id? (alias request_id), transition_id?}`."""

    decision = StrictCharField(
        max_length=64, allow_blank=True, help_text="approve, rework or cancel (trimmed, any case)."
    )
    reason = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_REASON
    )
    approval_request_id = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=MAX_GATE_ID,
        help_text="The gate opening being decided (`awaiting_gate.approval_request_id`).",
    )
    request_id = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=MAX_GATE_ID,
        help_text="Alias of `approval_request_id`.",
    )
    transition_id = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=MAX_GATE_ID,
        help_text="`awaiting_gate.transition_id`.",
    )


class RunGateView(WorkspaceAPIView):
    """Decide the run's open approval gate: approve, rework or cancel."""

    @extend_schema(
        request=GateDecisionInputSerializer,
        responses=inline_serializer(
            "RunGateDecisionResult", {"ok": serializers.BooleanField(), "run": run_schema_field()}
        ),
        operation_id="automation_runs_gate",
        extensions=error_codes(*GATE_ERROR_CODES),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(GateDecisionInputSerializer, request)
        given = {body.get("approval_request_id"), body.get("request_id")} - {None, ""}
        if len(given) > 1:
            raise InvalidRequest(
                "approval_request_id and its alias request_id name different gates",
                fields={"request_id": ["Differs from approval_request_id."]},
            )

        def decide() -> Response:
            outcome = gate_decide(
                actor=request.actor,
                run=run_to_decide(request.actor, run_id),
                decision=body["decision"],
                reason=body.get("reason"),
                approval_request_id=body.get("approval_request_id") or body.get("request_id"),
                transition_id=body.get("transition_id"),
                source=Surface.API,
                with_history=True,
            )
            return Response({"ok": True, "run": run_json(decided_run(outcome))})

        return idempotent(request, decide)


def decided_run(outcome: Outcome) -> Run:
    """The decided run with the relations `run_json` reads, filled from the outcome as
    `automations.selectors.runs_with_state` would prefetch them (a settling decision closes the
    gate; an approval towards a quorum leaves it open, with its progress)."""
    run = outcome.run
    run._prefetched_objects_cache = {
        "nodes": outcome.nodes,
        "lifecycle_events": outcome.lifecycle,
        "gate_decisions": outcome.history,
    }
    run.open = [] if outcome.settled else [outcome.gate]
    return run
