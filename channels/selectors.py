"""Scoped reads of chat connections and identities: the caller's workspace is in every query.

A connection of another workspace, and an identity of a user who is not a member of the caller's
workspace, do not exist for the caller (404, indistinguishable from a missing row).

`proven_identity` is the one lookup of who a chat click speaks for: only a link the user proved
through a connection that verified the click (`ChatIdentity.connection`) counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from channels.linking import ChatAccount
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


def proven_identity(
    verified: Sequence[ChannelConnection], account: ChatAccount, *, prefer: ChannelConnection
) -> ChatIdentity | None:
    """The link `account` proved through one of the `verified` connections (those whose secret
    signed the request), `prefer`'s first (the gate's workspace's); None when there is none.

    An unconfirmed link, or one proven through another connection (whose click someone holding
    only these secrets could forge), does not count.
    """
    found = ChatIdentity.objects.select_related("user", "connection").filter(
        connection__in=[c.pk for c in verified],
        kind=account.kind,
        external_team_id=account.team_id,
        external_user_id=account.user_id,
    )
    return min(found, key=lambda i: (i.connection_id != prefer.pk, i.pk), default=None)


@dataclass(frozen=True)
class ChatActor(Actor):
    """A member acting through a chat click: the actor names the identity it spoke through,
    so the decision's audit payload (`decidedBy`) records which link was used."""

    chat_identity_id: int | None = None

    @classmethod
    def through(cls, identity: ChatIdentity, membership: Membership) -> ChatActor:
        member = Actor.for_member(membership, source=identity.kind)
        return cls(**{**member.__dict__, "chat_identity_id": identity.pk})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "chat_identity_id": self.chat_identity_id}


def identity_get(actor: Actor, identity_id: int) -> ChatIdentity:
    found = identities(actor).filter(pk=identity_id).first() if identity_id <= MAX_PK else None
    if found is None:
        raise IdentityNotFound(identityID=identity_id)
    return found
