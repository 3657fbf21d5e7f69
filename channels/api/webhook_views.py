"""Outbound webhook endpoints and their delivery log over the API (workspace admins).

Thin: parse strictly, look the row up in the caller's workspace (`channels.webhooks.selectors`,
404 for another workspace's), call the service (`channels.webhooks.services`), render. Others
get 403 `WEBHOOK_ACCESS_DENIED` (audited for writes, as every refused mutation).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from channels.api.webhook_serializers import (
    DeliveryListSerializer,
    DeliverySerializer,
    EndpointCreateInputSerializer,
    EndpointListSerializer,
    EndpointSerializer,
    EndpointUpdateInputSerializer,
    EndpointWithSecretSerializer,
    ListQuerySerializer,
    delivery_json,
    endpoint_json,
    endpoint_secret_json,
)
from channels.webhooks import selectors, services
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import page_response

TAGS = ["webhooks"]


def _read(request) -> None:
    services.require_webhook_admin(request.actor, action="webhooks.read", audit=False)


class EndpointListView(WorkspaceAPIView):
    """The workspace's outbound webhook endpoints: list, and create one (workspace admins).

    An endpoint receives every event of the types it subscribes to, signed per the Standard
    Webhooks specification with its secret (docs/api.md, "Webhooks")."""

    @extend_schema(
        parameters=[ListQuerySerializer],
        responses=EndpointListSerializer,
        operation_id="webhooks_list",
        summary="List the workspace's webhook endpoints",
        tags=TAGS,
    )
    def get(self, request):
        _read(request)
        query = parse_input(ListQuerySerializer, request.query_params)
        return page_response(
            selectors.endpoints(request.actor), query, key="webhooks", render=endpoint_json
        )

    @extend_schema(
        request=EndpointCreateInputSerializer,
        responses={201: EndpointWithSecretSerializer},
        operation_id="webhooks_create",
        summary="Create a webhook endpoint (its secret is shown in this answer only)",
        tags=TAGS,
    )
    def post(self, request):
        data = parse_input(EndpointCreateInputSerializer, request.data)
        created = services.endpoint_create(actor=request.actor, data=data)
        return Response(
            endpoint_secret_json(created.endpoint, created.secret),
            status=status.HTTP_201_CREATED,
        )


class EndpointDetailView(WorkspaceAPIView):
    """One webhook endpoint: read, change (URL, event types, active flag, secret rotation),
    delete (workspace admins; every change audited)."""

    @extend_schema(
        responses=EndpointSerializer,
        operation_id="webhooks_retrieve",
        summary="Read a webhook endpoint",
        tags=TAGS,
    )
    def get(self, request, webhook_id: int):
        _read(request)
        return Response(endpoint_json(selectors.endpoint_get(request.actor, webhook_id)))

    @extend_schema(
        request=EndpointUpdateInputSerializer,
        responses=EndpointWithSecretSerializer,
        operation_id="webhooks_update",
        summary="Change a webhook endpoint, or rotate its secret",
        tags=TAGS,
    )
    def patch(self, request, webhook_id: int):
        endpoint = selectors.endpoint_get(request.actor, webhook_id)
        data = parse_input(EndpointUpdateInputSerializer, request.data)
        changed = services.endpoint_update(actor=request.actor, endpoint=endpoint, data=data)
        return Response(endpoint_secret_json(changed.endpoint, changed.secret))

    @extend_schema(
        responses={204: None},
        operation_id="webhooks_delete",
        summary="Delete a webhook endpoint and its deliveries",
        tags=TAGS,
    )
    def delete(self, request, webhook_id: int):
        endpoint = selectors.endpoint_get(request.actor, webhook_id)
        services.endpoint_delete(actor=request.actor, endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryListView(WorkspaceAPIView):
    """The delivery log of one endpoint: each event sent, its status, response code, attempts
    and latency, newest first."""

    @extend_schema(
        parameters=[ListQuerySerializer],
        responses=DeliveryListSerializer,
        operation_id="webhooks_deliveries_list",
        summary="The delivery log of a webhook endpoint, newest first",
        tags=TAGS,
    )
    def get(self, request, webhook_id: int):
        _read(request)
        endpoint = selectors.endpoint_get(request.actor, webhook_id)
        query = parse_input(ListQuerySerializer, request.query_params)
        return page_response(
            selectors.deliveries(endpoint), query, key="deliveries", render=delivery_json
        )


class RedeliverView(WorkspaceAPIView):
    """Send a finished delivery's event again as a new delivery, queued after the endpoint's
    pending ones (409 while the original is still pending or retrying)."""

    @extend_schema(
        request=None,
        responses={201: DeliverySerializer},
        operation_id="webhooks_deliveries_redeliver",
        summary="Send a delivered or failed delivery's event again (a new delivery)",
        tags=TAGS,
    )
    def post(self, request, webhook_id: int, delivery_id: int):
        endpoint = selectors.endpoint_get(request.actor, webhook_id)
        delivery = selectors.delivery_get(endpoint, delivery_id)
        again = services.delivery_redeliver(actor=request.actor, delivery=delivery)
        return Response(delivery_json(again), status=status.HTTP_201_CREATED)
