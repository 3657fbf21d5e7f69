"""Scoped reads of chat connections and identities: the caller's workspace is in every query.

A connection of another workspace, and an identity of a user who is not a member of the caller's
workspace, do not exist for the caller (404, indistinguishable from a missing row).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from channels.models import ChannelConnection, ChatIdentity
from governance.actors import Actor
from governance.api.pagination import MAX_PK
from governance.errors import NotFound
from governance.models import Membership


class ConnectionNotFound(NotFound):
    code = "CHANNEL_CONNECTION_NOT_FOUND"
    message = "Chat connection not found"


class IdentityNotFound(NotFound):
    code = "CHANNEL_IDENTITY_NOT_FOUND"
    message = "Chat identity not found"


def connections(actor: Actor) -> QuerySet[ChannelConnection]:
    return ChannelConnection.objects.filter(workspace=actor.workspace).select_related(
        "workspace__organization"
    )


def connection_get(actor: Actor, connection_id: int) -> ChannelConnection:
    found = connections(actor).filter(pk=connection_id).first() if connection_id <= MAX_PK else None
    if found is None:
        raise ConnectionNotFound(connectionID=connection_id)
    return found


def identities(actor: Actor) -> QuerySet[ChatIdentity]:
    """Links of the workspace's members (a member's link acts in this workspace)."""
    member = Membership.objects.filter(workspace=actor.workspace, user=OuterRef("user"))
    return ChatIdentity.objects.filter(Exists(member)).select_related("user")


def identity_get(actor: Actor, identity_id: int) -> ChatIdentity:
    found = identities(actor).filter(pk=identity_id).first() if identity_id <= MAX_PK else None
    if found is None:
        raise IdentityNotFound(identityID=identity_id)
    return found
