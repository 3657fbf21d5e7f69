"""Schedules and webhook triggers of an automation, and the inbound hook itself. Thin: parse,
find the automation (`selectors.automation_get`: 404 for another workspace's), call
`automations.triggers`, render. Reads need view permission, changes change permission (403,
audited, from the service)."""

from __future__ import annotations

from django.conf import settings
from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from automations import selectors
from automations.api import error_codes as codes
from automations.api.trigger_serializers import (
    HookAcceptedSerializer,
    ScheduleInputSerializer,
    ScheduleListSerializer,
    ScheduleSerializer,
    TriggerListQuerySerializer,
    WebhookTriggerInputSerializer,
    WebhookTriggerListSerializer,
    WebhookTriggerSecretSerializer,
    WebhookTriggerSerializer,
    schedule_json,
    webhook_trigger_json,
)
from automations.triggers import schedules, webhooks
from automations.triggers import selectors as trigger_selectors
from governance.api.base import WorkspaceAPIView, parse_input, parse_optional_body
from governance.api.pagination import page_response
from governance.api.schema import RATE_LIMITED_EXTENSION, error_codes
from governance.errors import InvalidRequest, PayloadTooLarge
from governance.tokens import token_digest

SCHEDULE_ID = OpenApiParameter("schedule_id", str, OpenApiParameter.PATH)
TRIGGER_ID = OpenApiParameter("trigger_id", str, OpenApiParameter.PATH)


class ScheduleListView(WorkspaceAPIView):
    """An automation's schedules (newest first) and adding one."""

    @extend_schema(
        parameters=[TriggerListQuerySerializer],
        responses=ScheduleListSerializer,
        operation_id="automation_schedules_list",
        extensions=error_codes(*codes.ACCESS),
    )
    def get(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        query = parse_input(TriggerListQuerySerializer, request.query_params)
        return page_response(
            trigger_selectors.schedules_of(automation),
            query,
            key="schedules",
            render=lambda schedule: schedule_json(schedule, automation_id),
        )

    @extend_schema(
        request=ScheduleInputSerializer,
        responses={201: ScheduleSerializer},
        operation_id="automation_schedules_create",
        extensions=error_codes(*codes.ACCESS, *codes.SCHEDULE),
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_input(ScheduleInputSerializer, request.data)
        schedule = schedules.schedule_create(actor=request.actor, automation=automation, data=data)
        return Response(schedule_json(schedule, automation_id), status=status.HTTP_201_CREATED)


class ScheduleDetailView(WorkspaceAPIView):
    """One schedule: read, change (cron, timezone, inputs, enabled), delete."""

    def _schedule(self, request, automation_id: str, schedule_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        return trigger_selectors.schedule_get(automation, schedule_id)

    @extend_schema(
        parameters=[SCHEDULE_ID],
        responses=ScheduleSerializer,
        operation_id="automation_schedules_retrieve",
        extensions=error_codes(*codes.ACCESS, *codes.SCHEDULE_READ),
    )
    def get(self, request, automation_id: str, schedule_id: str):
        schedule = self._schedule(request, automation_id, schedule_id)
        return Response(schedule_json(schedule, automation_id))

    @extend_schema(
        parameters=[SCHEDULE_ID],
        request=ScheduleInputSerializer(partial=True),
        responses=ScheduleSerializer,
        operation_id="automation_schedules_update",
        extensions=error_codes(
            *codes.ACCESS, *codes.SCHEDULE_READ, *codes.SCHEDULE, codes.TRIGGER_OWNER
        ),
    )
    def patch(self, request, automation_id: str, schedule_id: str):
        schedule = self._schedule(request, automation_id, schedule_id)
        data = parse_input(ScheduleInputSerializer, request.data, partial=True)
        updated = schedules.schedule_update(actor=request.actor, schedule=schedule, data=data)
        return Response(schedule_json(updated, automation_id))

    @extend_schema(
        parameters=[SCHEDULE_ID],
        responses={204: None},
        operation_id="automation_schedules_delete",
        extensions=error_codes(*codes.ACCESS, *codes.SCHEDULE_READ),
    )
    def delete(self, request, automation_id: str, schedule_id: str):
        schedule = self._schedule(request, automation_id, schedule_id)
        schedules.schedule_delete(actor=request.actor, schedule=schedule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTriggerListView(WorkspaceAPIView):
    """An automation's webhook triggers (newest first, revoked ones too) and adding one."""

    @extend_schema(
        parameters=[TriggerListQuerySerializer],
        responses=WebhookTriggerListSerializer,
        operation_id="automation_webhook_triggers_list",
        extensions=error_codes(*codes.ACCESS),
    )
    def get(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        query = parse_input(TriggerListQuerySerializer, request.query_params)
        return page_response(
            trigger_selectors.webhook_triggers_of(automation),
            query,
            key="webhook_triggers",
            render=lambda trigger: webhook_trigger_json(trigger, automation_id),
        )

    @extend_schema(
        request=WebhookTriggerInputSerializer,
        responses={201: WebhookTriggerSecretSerializer},
        operation_id="automation_webhook_triggers_create",
        extensions=error_codes(*codes.ACCESS),
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_optional_body(WebhookTriggerInputSerializer, request)
        trigger, token = webhooks.webhook_trigger_create(
            actor=request.actor, automation=automation, name=data.get("name", "")
        )
        return Response(
            webhook_trigger_json(trigger, automation_id, token), status=status.HTTP_201_CREATED
        )


class _WebhookTriggerView(WorkspaceAPIView):
    def _trigger(self, request, automation_id: str, trigger_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        return trigger_selectors.webhook_trigger_get(automation, trigger_id)


class WebhookTriggerDetailView(_WebhookTriggerView):
    """One webhook trigger: read, revoke (DELETE; its URL answers 404 from then on)."""

    @extend_schema(
        parameters=[TRIGGER_ID],
        responses=WebhookTriggerSerializer,
        operation_id="automation_webhook_triggers_retrieve",
        extensions=error_codes(*codes.ACCESS, *codes.WEBHOOK_TRIGGER_READ),
    )
    def get(self, request, automation_id: str, trigger_id: str):
        trigger = self._trigger(request, automation_id, trigger_id)
        return Response(webhook_trigger_json(trigger, automation_id))

    @extend_schema(
        parameters=[TRIGGER_ID],
        responses={204: None},
        operation_id="automation_webhook_triggers_revoke",
        extensions=error_codes(*codes.ACCESS, *codes.WEBHOOK_TRIGGER_READ),
    )
    def delete(self, request, automation_id: str, trigger_id: str):
        trigger = self._trigger(request, automation_id, trigger_id)
        webhooks.webhook_trigger_revoke(actor=request.actor, trigger=trigger)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTriggerRotateView(_WebhookTriggerView):
    """A new secret URL for the trigger; the old one answers 404 from then on."""

    @extend_schema(
        parameters=[TRIGGER_ID],
        request=None,
        responses=WebhookTriggerSecretSerializer,
        operation_id="automation_webhook_triggers_rotate",
        extensions=error_codes(*codes.ACCESS, *codes.WEBHOOK_TRIGGER_READ),
    )
    def post(self, request, automation_id: str, trigger_id: str):
        trigger = self._trigger(request, automation_id, trigger_id)
        rotated, token = webhooks.webhook_trigger_rotate(actor=request.actor, trigger=trigger)
        return Response(webhook_trigger_json(rotated, automation_id, token))


# --- The inbound hook --------------------------------------------------------------------------


class HookRateThrottle(SimpleRateThrottle):
    """`FLOWGATE_WEBHOOK_RATE` requests per token (by its digest, never the token itself), in
    the shared cache so every web process counts together. Unknown tokens are counted the same
    way, so the limit says nothing about which tokens exist."""

    scope = "webhook_trigger"

    def get_rate(self):
        return settings.FLOWGATE_WEBHOOK_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": token_digest(view.kwargs.get("token", "")),
        }


class HookView(APIView):
    """`POST /api/hooks/<token>`: start a run of the trigger's automation with the JSON body as
    its inputs. The token in the path is the credential; an unknown or revoked one answers 404
    exactly like a route that does not exist."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [HookRateThrottle]

    @extend_schema(
        request={"application/json": {"type": "object", "additionalProperties": True}},
        responses={202: HookAcceptedSerializer},
        auth=[],
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH)],
        operation_id="hooks_fire",
        extensions={
            **error_codes(*codes.RUN_START, "AUTOMATION_V2_NOT_FOUND"),
            RATE_LIMITED_EXTENSION: True,
        },
    )
    def post(self, request, token: str):
        limit = settings.FLOWGATE_WEBHOOK_MAX_BODY_BYTES
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > limit:
            raise PayloadTooLarge(
                f"Request body of {length} bytes exceeds the webhook limit of {limit} bytes",
                limit=limit,
            )
        inputs = _body_object(request)
        run = webhooks.webhook_fire(token=token, inputs=inputs)
        return Response(
            {
                "ok": True,
                "run_id": run.run_id,
                "automation_id": run.automation.automation_id,
                "status": run.status,
                "trigger_type": run.trigger_type,
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _body_object(request) -> dict:
    """The JSON object of the body (no body: `{}`); any other JSON value is a 400."""
    data = request.data
    if isinstance(data, QueryDict) and not data:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest(
            "The body must be a JSON object (it becomes the run's inputs)",
            fields={"inputs": ["Must be a JSON object."]},
        )
    return dict(data)
