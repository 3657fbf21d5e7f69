"""Automation endpoints: thin views that parse input, call a selector or service, render JSON."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from automations import selectors, services
from automations.api import error_codes as codes
from automations.api.serializers import (
    AutomationInputSerializer,
    AutomationListQuerySerializer,
    AutomationListSerializer,
    AutomationSerializer,
    GrantInputSerializer,
    GrantListQuerySerializer,
    GrantListSerializer,
    GrantSerializer,
    automation_json,
)
from automations.ids import APPROVAL_REQUESTS_AUTOMATION_ID
from automations.warnings import automation_warnings
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import list_json, page_response, sequence_page
from governance.api.schema import error_codes
from governance.errors import InvalidRequest
from governance.idempotency import idempotent
from governance.policy import Action


def _with_warnings(automation) -> dict:
    """One automation's JSON with its `warnings` (not in lists: they cost queries per row)."""
    return {**automation_json(automation), "warnings": automation_warnings(automation)}


class AutomationListView(WorkspaceAPIView):
    """List (newest first, keyset-paginated) and create automations in the caller's workspace."""

    @extend_schema(
        parameters=[AutomationListQuerySerializer],
        responses=AutomationListSerializer,
        operation_id="automations_list",
        extensions=error_codes(),
    )
    def get(self, request):
        query = parse_input(AutomationListQuerySerializer, request.query_params)
        # The approval-requests automation backs API requests; it is nobody's to list or edit.
        queryset = selectors.automations_visible(request.actor).exclude(
            automation_id=APPROVAL_REQUESTS_AUTOMATION_ID
        )
        if "status" in query:
            queryset = queryset.filter(status=query["status"])
        return page_response(queryset, query, key="automations", render=automation_json)

    @extend_schema(
        request=AutomationInputSerializer,
        responses={201: AutomationSerializer},
        operation_id="automations_create",
        extensions=error_codes(*codes.ACCESS, *codes.SPEC, *codes.IDEMPOTENCY_ERROR_CODES),
    )
    def post(self, request):
        data = parse_input(AutomationInputSerializer, request.data)

        def create() -> Response:
            automation = services.automation_create(actor=request.actor, data=data)
            automation = selectors.automation_get(request.actor, automation.automation_id)
            return Response(_with_warnings(automation), status=status.HTTP_201_CREATED)

        return idempotent(request, create)


class AutomationDetailView(WorkspaceAPIView):
    """Read, update (validated, versioned) and delete one automation."""

    @extend_schema(
        responses=AutomationSerializer,
        operation_id="automations_retrieve",
        extensions=error_codes(*codes.ACCESS),
    )
    def get(self, request, automation_id: str):
        return Response(_with_warnings(selectors.automation_get(request.actor, automation_id)))

    @extend_schema(
        request=AutomationInputSerializer,
        responses=AutomationSerializer,
        operation_id="automations_update",
        extensions=error_codes(*codes.ACCESS, *codes.SPEC),
    )
    def patch(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_input(AutomationInputSerializer, request.data, partial=True)
        if "automation_id" in data and data["automation_id"] != automation_id:
            raise InvalidRequest(
                "automation_id cannot be changed", fields={"automation_id": ["Read-only."]}
            )
        updated = services.automation_update(actor=request.actor, automation=automation, data=data)
        return Response(_with_warnings(updated))

    @extend_schema(
        responses={204: None},
        operation_id="automations_delete",
        extensions=error_codes(*codes.ACCESS),
    )
    def delete(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        services.automation_delete(actor=request.actor, automation=automation)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _grant_position(grant: dict) -> list:
    """User grants (`u<pk>`) before group grants (`g<pk>`), each by pk."""
    grant_id = grant["grant_id"]
    return [0 if grant_id[0] == "u" else 1, int(grant_id[1:])]


class GrantListView(WorkspaceAPIView):
    """Per-automation grants (guardian object permissions) to users or groups."""

    @extend_schema(
        parameters=[GrantListQuerySerializer],
        responses=GrantListSerializer,
        operation_id="automation_grants_list",
    )
    def get(self, request, automation_id: str):
        automation = selectors.automation_get(
            request.actor, automation_id, action=Action.MANAGE_GRANTS
        )
        query = parse_input(GrantListQuerySerializer, request.query_params)
        grants, next_cursor = sequence_page(
            selectors.automation_grants(automation),
            position=_grant_position,
            limit=query["limit"],
            cursor=query.get("cursor"),
        )
        return Response(list_json("grants", grants, next_cursor))

    @extend_schema(
        request=GrantInputSerializer,
        responses={201: GrantSerializer},
        operation_id="automation_grants_create",
    )
    def post(self, request, automation_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        data = parse_input(GrantInputSerializer, request.data)
        row = services.grant_add(
            actor=request.actor,
            automation=automation,
            permission=data["permission"],
            username=data.get("user"),
            group_name=data.get("group"),
        )
        prefix = "u" if data.get("user") else "g"
        grant = selectors.grant_json(
            f"{prefix}{row.pk}", data["permission"], user=data.get("user"), group=data.get("group")
        )
        return Response(grant, status=status.HTTP_201_CREATED)


class GrantDetailView(WorkspaceAPIView):
    """Revoke a grant (owners and workspace admins; audited)."""

    @extend_schema(
        responses={204: None},
        parameters=[OpenApiParameter("grant_id", str, OpenApiParameter.PATH)],
        operation_id="automation_grants_delete",
    )
    def delete(self, request, automation_id: str, grant_id: str):
        automation = selectors.automation_get(request.actor, automation_id)
        services.grant_revoke(actor=request.actor, automation=automation, grant_id=grant_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
