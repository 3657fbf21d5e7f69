"""Run endpoints: start a run, read one. Thin: parse, call a selector or service, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from automations import selectors, services
from automations.api import error_codes as codes
from automations.api.run_control_views import StrictInputSerializer
from automations.api.run_json import run_json
from automations.api.run_schema import run_schema_field
from governance.api.base import WorkspaceAPIView, parse_optional_body
from governance.api.schema import error_codes
from governance.idempotency import idempotent


class RunNowInputSerializer(StrictInputSerializer):
    inputs = serializers.DictField(
        required=False,
        help_text="The run's inputs; validated against the automation's `input_schema`.",
    )


class RunNowView(WorkspaceAPIView):
    """Start a run of the automation's current spec (operate permission; audited), optionally
    with `inputs` (400 `RUN_INPUTS_INVALID` when they do not match `input_schema`)."""

    @extend_schema(
        request=RunNowInputSerializer,
        responses={
            201: inline_serializer(
                "RunStarted", {"ok": serializers.BooleanField(), "run": run_schema_field()}
            )
        },
        operation_id="automations_run_now",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_START),
    )
    def post(self, request, automation_id: str):
        body = parse_optional_body(RunNowInputSerializer, request)

        def start() -> Response:
            automation = selectors.automation_get(request.actor, automation_id)
            run = services.run_start(
                actor=request.actor, automation=automation, inputs=body.get("inputs")
            )
            run = selectors.run_get(request.actor, run.run_id)
            return Response({"ok": True, "run": run_json(run)}, status=status.HTTP_201_CREATED)

        return idempotent(request, start)


class RunDetailView(WorkspaceAPIView):
    """One run: status, inputs, checkpoint (node states, outputs, the open gate, gate and
    lifecycle history)."""

    @extend_schema(
        responses=inline_serializer("RunEnvelope", {"run": run_schema_field()}),
        operation_id="automation_runs_retrieve",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_READ),
    )
    def get(self, request, run_id: str):
        return Response({"run": run_json(selectors.run_get(request.actor, run_id))})
