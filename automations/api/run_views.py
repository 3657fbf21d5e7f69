"""Run endpoints: start a run, read one. Thin: parse, call a selector or service, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from automations import selectors, services
from automations.api.run_json import run_json
from automations.api.run_schema import run_schema_field
from governance.api.base import WorkspaceAPIView

RUN_SCHEMA = run_schema_field()


class RunNowView(WorkspaceAPIView):
    """Start a run of the automation's current spec (operate permission; audited)."""

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "RunStarted", {"ok": serializers.BooleanField(), "run": RUN_SCHEMA}
            )
        },
        operation_id="automations_run_now",
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        run = services.run_start(actor=request.actor, automation=automation)
        run = selectors.run_get(request.actor, run.run_id)
        return Response({"ok": True, "run": run_json(run)}, status=status.HTTP_201_CREATED)


class RunDetailView(WorkspaceAPIView):
    @extend_schema(
        responses=inline_serializer("RunEnvelope", {"run": RUN_SCHEMA}),
        operation_id="automation_runs_retrieve",
    )
    def get(self, request, run_id: str):
        return Response({"run": run_json(selectors.run_get(request.actor, run_id))})
