"""Chat connections and identities over the API (workspace admins; SPEC §8).

An identity created here is unconfirmed: it decides nothing until its user confirms it on the
link page a chat card sends them (`channels.services.identity_link`). Users link their own chat
accounts only through that page.

Thin: parse strictly, look the row up in the caller's workspace (`channels.selectors`, 404 for
another workspace's), call the service (`channels.services`), render. Non-admins get 403
`CHANNEL_ACCESS_DENIED` (audited for writes, as every refused mutation).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from channels import selectors, services
from channels.api.serializers import (
    ConnectionCreateInputSerializer,
    ConnectionListSerializer,
    ConnectionSerializer,
    ConnectionUpdateInputSerializer,
    IdentityInputSerializer,
    IdentityListSerializer,
    IdentitySerializer,
    ListQuerySerializer,
    connection_json,
    identity_json,
)
from channels.linking import ChatAccount
from governance.api.base import WorkspaceAPIView, parse_input
from governance.api.pagination import page_response
from governance.errors import InvalidRequest
from governance.models import Membership

TAGS = ["channels"]


def _read(request) -> None:
    services.require_connection_admin(request.actor, action="channels.read", audit=False)


def _listing(request, queryset, name: str, as_json) -> Response:
    """One page of `queryset` as `{name: [...], "count", "next_cursor"}` (admins only)."""
    _read(request)
    query = parse_input(ListQuerySerializer, request.query_params)
    return page_response(queryset, query, key=name, render=as_json)


class ConnectionListView(WorkspaceAPIView):
    """The workspace's chat connections (workspace admins): list and add one."""

    @extend_schema(
        parameters=[ListQuerySerializer],
        responses=ConnectionListSerializer,
        operation_id="channel_connections_list",
        tags=TAGS,
    )
    def get(self, request):
        return _listing(
            request, selectors.connections(request.actor), "connections", connection_json
        )

    @extend_schema(
        request=ConnectionCreateInputSerializer,
        responses={201: ConnectionSerializer},
        operation_id="channel_connections_create",
        tags=TAGS,
    )
    def post(self, request):
        data = parse_input(ConnectionCreateInputSerializer, request.data)
        kind = data.pop("kind")
        connection = services.connection_create(actor=request.actor, kind=kind, data=data)
        return Response(connection_json(connection), status=status.HTTP_201_CREATED)


class ConnectionDetailView(WorkspaceAPIView):
    """One chat connection (workspace admins): read, change, delete."""

    @extend_schema(
        responses=ConnectionSerializer, operation_id="channel_connections_retrieve", tags=TAGS
    )
    def get(self, request, connection_id: int):
        _read(request)
        return Response(connection_json(selectors.connection_get(request.actor, connection_id)))

    @extend_schema(
        request=ConnectionUpdateInputSerializer,
        responses=ConnectionSerializer,
        operation_id="channel_connections_update",
        tags=TAGS,
    )
    def patch(self, request, connection_id: int):
        connection = selectors.connection_get(request.actor, connection_id)
        data = parse_input(ConnectionUpdateInputSerializer, request.data)
        updated = services.connection_update(actor=request.actor, connection=connection, data=data)
        return Response(connection_json(updated))

    @extend_schema(responses={204: None}, operation_id="channel_connections_delete", tags=TAGS)
    def delete(self, request, connection_id: int):
        connection = selectors.connection_get(request.actor, connection_id)
        services.connection_delete(actor=request.actor, connection=connection)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IdentityListView(WorkspaceAPIView):
    """Chat accounts linked to members of the workspace: list, and link one (unconfirmed)."""

    @extend_schema(
        parameters=[ListQuerySerializer],
        responses=IdentityListSerializer,
        operation_id="channel_identities_list",
        tags=TAGS,
    )
    def get(self, request):
        return _listing(request, selectors.identities(request.actor), "identities", identity_json)

    @extend_schema(
        request=IdentityInputSerializer,
        responses={201: IdentitySerializer},
        operation_id="channel_identities_create",
        tags=TAGS,
    )
    def post(self, request):
        """An unconfirmed link (decides nothing until the user confirms it on the link page)."""
        services.require_connection_admin(request.actor, action="channels.identity.link")
        data = parse_input(IdentityInputSerializer, request.data)
        membership = (
            Membership.objects.select_related("user")
            .filter(workspace=request.actor.workspace, user__username=data["user"])
            .first()
        )
        if membership is None:
            raise InvalidRequest(
                f"{data['user']} is not a member of this workspace",
                fields={"user": ["Not a member of this workspace."]},
            )
        identity = services.identity_link(
            actor=request.actor,
            user=membership.user,
            account=ChatAccount(
                kind=data["kind"],
                team_id=data.get("external_team_id", "").strip(),
                user_id=data["external_user_id"].strip(),
                display_name=data.get("display_name", "").strip(),
            ),
        )
        return Response(identity_json(identity), status=status.HTTP_201_CREATED)


class IdentityDetailView(WorkspaceAPIView):
    """Unlink a chat account (a workspace admin, or the member it is linked to)."""

    @extend_schema(responses={204: None}, operation_id="channel_identities_delete", tags=TAGS)
    def delete(self, request, identity_id: int):
        identity = selectors.identity_get(request.actor, identity_id)
        services.identity_unlink(actor=request.actor, identity=identity)
        return Response(status=status.HTTP_204_NO_CONTENT)
