"""Run-control endpoints: pause, resume, cancel, recover, repair, task retry/requeue/continue and
the reset preview. Thin: parse the body, find the run, call `automations.runs.control` or
`automations.runs.repair`, render.

Error order (reference notes §1.4): body shape (400) · a required `node_id` (400, before the run
is read) · the run (404 `AUTOMATION_V2_RUN_NOT_FOUND`, also for another workspace's run) · the
operate permission (403, audited) · the source status (409) · the node / agent (404).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from automations import selectors
from automations.api import error_codes as codes
from automations.api.run_json import run_json
from automations.api.run_schema import node_ids, run_schema_field
from automations.api.serializers import AutomationSerializer, automation_json
from automations.flow import MAX_ID_LENGTH
from automations.runs import control, repair
from governance.api.base import WorkspaceAPIView, parse_optional_body
from governance.api.fields import StrictCharField
from governance.api.schema import error_codes

MAX_REASON = 2000


class StrictInputSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo must not be silently ignored)."""

    def validate(self, attrs):
        data = self.initial_data
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in sorted(unknown)}
            )
        return attrs


class RunReasonInputSerializer(StrictInputSerializer):
    reason = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_REASON
    )


class RunRepairInputSerializer(RunReasonInputSerializer):
    node_id = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_ID_LENGTH, help_text="Required."
    )
    prompt = StrictCharField(required=False, allow_blank=True, allow_null=True)
    template_id = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_ID_LENGTH
    )
    model_policy = serializers.DictField(required=False, allow_null=True)


def _respond(request, run_id: str, **extra) -> Response:
    run = selectors.run_get(request.actor, run_id)
    return Response({"ok": True, "run": run_json(run), **extra})


def _result(name: str, **fields) -> serializers.Serializer:
    return inline_serializer(
        name, {"ok": serializers.BooleanField(), "run": run_schema_field(), **fields}
    )


RUN_RESULT = _result("RunControlResult")


class RunPauseView(WorkspaceAPIView):
    """`queued`/`running` → `paused` (operate permission; audited `automation.run.paused`)."""

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=RUN_RESULT,
        operation_id="automation_runs_pause",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(RunReasonInputSerializer, request)
        run = selectors.run_for_action(request.actor, run_id)
        control.run_pause(actor=request.actor, run=run, reason=body.get("reason"))
        return _respond(request, run_id)


class RunResumeView(WorkspaceAPIView):
    """`paused` → `queued` (audited `automation.run.resumed`)."""

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=RUN_RESULT,
        operation_id="automation_runs_resume",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(RunReasonInputSerializer, request)
        run = selectors.run_for_action(request.actor, run_id)
        control.run_resume(actor=request.actor, run=run, reason=body.get("reason"))
        return _respond(request, run_id)


class RunCancelView(WorkspaceAPIView):
    """Any non-terminal run → `cancelled`; a terminal run answers 200 with `alreadyTerminal`."""

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=_result(
            "RunCancelResult",
            alreadyTerminal=serializers.BooleanField(
                required=False, help_text="Present (true) when the run was already terminal."
            ),
        ),
        operation_id="automation_runs_cancel",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(RunReasonInputSerializer, request)
        run = selectors.run_for_action(request.actor, run_id)
        result = control.run_cancel(actor=request.actor, run=run, reason=body.get("reason"))
        extra = {"alreadyTerminal": True} if result.already_terminal else {}
        return _respond(request, run_id, **extra)


class RunRecoverView(WorkspaceAPIView):
    """Failed, paused, blocked (or completed with blocked nodes) → `queued`, resetting the
    affected subtree."""

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=RUN_RESULT,
        operation_id="automation_runs_recover",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(RunReasonInputSerializer, request)
        run = selectors.run_for_action(request.actor, run_id)
        control.run_recover(actor=request.actor, run=run, reason=body.get("reason"))
        return _respond(request, run_id)


class RunRepairView(WorkspaceAPIView):
    """Edit a node's prompt and/or its agent's template/model on the automation (new version),
    reset the node's subtree and re-queue the run on the repaired spec."""

    @extend_schema(
        request=RunRepairInputSerializer,
        responses=_result("RunRepairResult", automation=AutomationSerializer()),
        operation_id="automation_runs_repair",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str):
        body = parse_optional_body(RunRepairInputSerializer, request)
        node_id = control.require_node_id(
            body.get("node_id", ""), code="AUTOMATION_V2_REPAIR_NODE_REQUIRED"
        )
        run = selectors.run_for_action(request.actor, run_id)
        result = repair.run_repair(
            actor=request.actor,
            run=run,
            node_id=node_id,
            prompt=body.get("prompt"),
            template_id=body.get("template_id"),
            model_policy=body.get("model_policy"),
            reason=body.get("reason"),
        )
        automation = selectors.automation_get(request.actor, result.automation.automation_id)
        return _respond(request, run_id, automation=automation_json(automation))


class _TaskView(WorkspaceAPIView):
    """A task action: the node id comes from the path and is required before the run is read."""

    service = None  # set by subclasses: a task action of `automations.runs.repair`

    def post(self, request, run_id: str, node_id: str):
        body = parse_optional_body(RunReasonInputSerializer, request)
        node_id = control.require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")
        run = selectors.run_for_action(request.actor, run_id)
        result = type(self).service(
            actor=request.actor, run=run, node_id=node_id, reason=body.get("reason")
        )
        return _respond(request, run_id, **result.extra)


TASK_RESET_RESULT = _result(
    "RunTaskResetResult",
    node_id=serializers.CharField(),
    reset_nodes=node_ids(),
    cleared_outputs=node_ids(),
)


class RunTaskRetryView(_TaskView):
    """Reset the node's descendant subtree (attempts kept) and re-queue the run."""

    service = staticmethod(repair.run_task_retry)

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=TASK_RESET_RESULT,
        operation_id="automation_run_tasks_retry",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str, node_id: str):
        return super().post(request, run_id, node_id)


class RunTaskRequeueView(_TaskView):
    """As retry, recorded as a requeue."""

    service = staticmethod(repair.run_task_requeue)

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=TASK_RESET_RESULT,
        operation_id="automation_run_tasks_requeue",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str, node_id: str):
        return super().post(request, run_id, node_id)


class RunTaskContinueView(_TaskView):
    """Minimal reset of one blocked node and re-queue the run."""

    service = staticmethod(repair.run_task_continue)

    @extend_schema(
        request=RunReasonInputSerializer,
        responses=_result(
            "RunTaskContinueResult", node_id=serializers.CharField(), reset_nodes=node_ids()
        ),
        operation_id="automation_run_tasks_continue",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def post(self, request, run_id: str, node_id: str):
        return super().post(request, run_id, node_id)


class RunTaskResetPreviewView(WorkspaceAPIView):
    """What a retry/requeue of the node would reset; a read (changes and records nothing)."""

    @extend_schema(
        responses=inline_serializer(
            "RunResetPreviewResult",
            {
                "ok": serializers.BooleanField(),
                "preview": inline_serializer(
                    "RunResetPreview",
                    {
                        "run_id": serializers.CharField(),
                        "node_id": serializers.CharField(),
                        "reset_nodes": node_ids(),
                        "cleared_outputs": node_ids(),
                        "preserves_upstream_outputs": serializers.BooleanField(),
                    },
                ),
            },
        ),
        operation_id="automation_run_tasks_reset_preview",
        extensions=error_codes(*codes.ACCESS, *codes.RUN_CONTROL),
    )
    def get(self, request, run_id: str, node_id: str):
        node_id = control.require_node_id(node_id, code="AUTOMATION_V2_TASK_NODE_REQUIRED")
        run = selectors.run_get(request.actor, run_id)
        return Response({"ok": True, "preview": repair.run_reset_preview(run=run, node_id=node_id)})
