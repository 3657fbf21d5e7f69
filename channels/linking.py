"""Self-service linking of a chat account: the signed link a chat user is sent privately.

When an unlinked chat account presses a card button, the handler sends that account (and only
it: a Slack ephemeral message, a Discord ephemeral response, a Telegram private message) a link
`{FLOWGATE_PUBLIC_URL}/channels/link/<token>/`. The token is signed with `SECRET_KEY`
(`django.core.signing`), lives for `LINK_MAX_AGE_S`, and carries the chat account (platform, team
id, user id, display name) and the connection whose secret verified the click (hence the
workspace whose card was pressed). Opening it while signed in to Flowgate shows which chat
account will be linked; confirming links it to the signed-in user, bound to that connection.

This is the only way a link becomes *proven* (`ChatIdentity.connection`): receiving the link
proves the chat account (as far as that connection's bot can tell), signing in proves the
Flowgate user. Nothing is stored until the confirmation, so the flow needs no table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "flowgate.channels.link"
LINK_MAX_AGE_S = 15 * 60


@dataclass(frozen=True)
class ChatAccount:
    """A chat platform account as a verified request names it.

    Slack user ids are per team, so a Slack account is (team id, user id). Discord and Telegram
    user ids are global, so their team id is empty.
    """

    kind: str
    team_id: str
    user_id: str
    display_name: str = ""

    def describe(self) -> str:
        name = f"{self.display_name} ({self.user_id})" if self.display_name else self.user_id
        team = f" in team {self.team_id}" if self.team_id else ""
        return f"{self.kind.title()} account {name}{team}"


@dataclass(frozen=True)
class LinkRequest:
    account: ChatAccount
    connection_id: int


class LinkExpired(Exception):
    """The token is forged, altered or older than `LINK_MAX_AGE_S`."""


def link_token(account: ChatAccount, connection_id: int) -> str:
    payload = [account.kind, account.team_id, account.user_id, account.display_name, connection_id]
    return signing.dumps(payload, salt=SALT, compress=True)


def link_url(account: ChatAccount, connection_id: int) -> str:
    path = reverse("channels-link", kwargs={"token": link_token(account, connection_id)})
    return f"{settings.FLOWGATE_PUBLIC_URL.rstrip('/')}{path}"


def read_link_token(token: str) -> LinkRequest:
    try:
        kind, team_id, user_id, display_name, connection_id = signing.loads(
            token, salt=SALT, max_age=LINK_MAX_AGE_S
        )
    except (signing.BadSignature, ValueError, TypeError) as exc:
        # SignatureExpired is a BadSignature; a payload of another shape cannot be ours.
        raise LinkExpired() from exc
    if not isinstance(connection_id, int):
        raise LinkExpired()
    return LinkRequest(
        account=ChatAccount(kind=kind, team_id=team_id, user_id=user_id, display_name=display_name),
        connection_id=connection_id,
    )
