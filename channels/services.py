"""Writes to chat connections and chat identities: authorised, validated, audited.

Every change goes through these functions, from the API, the admin and the self-service link
page alike (STYLE.md: one mutation path). Each runs in one transaction that writes the row and
its audit event; a refused mutation is audited `automation.governance.denied` in a transaction of
its own, as everywhere else.

Connections belong to one workspace and only its admins manage them. Secrets (bot token, signing
secret / webhook secret) are write-only: they are stored encrypted, never returned, and audit
payloads only say *that* a secret changed.

Identities are not bound to a workspace (a chat account is one person in every workspace they
belong to). A link *decides* only once the user proved it on the signed link page
(`identity_confirm`, `source="page"`), which binds it to the connection the proof came through
(SPEC §6.4: identity is the Flowgate user; the admin controls a connection's secret, so nothing
an admin asserts may let them speak for someone in chat). Admins (API, admin console) may create
*unconfirmed* links (`identity_link`), which decide nothing until the user confirms them, and
unlink. Who may create or remove a link of a user:
- create unconfirmed: a human admin of every workspace that user belongs to, or a superuser in
  the admin;
- unlink: the same, or the user themself.
When a connection's verifying secret (signing secret, Discord public key) changes, the links
proven through it are released: whoever set the new secret could otherwise forge their clicks.
Only human users can be linked: only humans decide gates. A link, confirmation or unlink is
audited in the chain of every workspace the user belongs to, since it changes who may decide
there.
"""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from channels.linking import LINK_MAX_AGE_S, ChatAccount
from channels.models import ChannelConnection, ChannelKind, ChatIdentity, LinkTokenUse
from channels.secrets import deployment_slack_digest, secret_digest
from governance.actors import Actor
from governance.audit import audit_record, audit_record_committed
from governance.errors import Conflict, Forbidden, InvalidRequest
from governance.models import Membership, Role, User, Workspace
from governance.policy import deny

CONNECTION_FIELDS = (
    "name",
    "channel_id",
    "external_team_id",
    "application_id",
    "public_key",
    "is_active",
)
SECRET_FIELDS = ("bot_token", "signing_secret")
# The fields that verify a click: changing one releases the identities proven through the
# connection (see the module docstring).
VERIFYING_FIELDS = ("signing_secret", "public_key")
# What each kind needs to post cards and to verify the clicks on them.
# A Slack connection without a signing secret of its own uses the deployment's Slack app.
REQUIRED = {
    ChannelKind.SLACK: ("bot_token", "channel_id"),
    ChannelKind.DISCORD: ("bot_token", "public_key", "channel_id"),
    ChannelKind.TELEGRAM: ("bot_token", "signing_secret", "channel_id"),
}
# Telegram's rules for `secret_token` of setWebhook, and the shape of a bot token (the bot id
# before the colon is how a force-reply prompt is recognised as ours).
TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
TELEGRAM_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
MAX_SECRET = 512

SECRET_IN_USE = (
    "This secret verifies another workspace's requests: a workspace needs a secret of its own "
    "(a Slack app of its own, or a Telegram webhook secret only it knows)"
)
NO_DEPLOYMENT_APP = (
    "Required: this deployment has no Slack app of its own (FLOWGATE_SLACK_SIGNING_SECRET is "
    "unset), so a Slack connection needs its app's signing secret"
)

CONNECTION_DENIED = ("CHANNEL_ACCESS_DENIED", "Only workspace admins may manage chat connections")
IDENTITY_DENIED = (
    "CHANNEL_IDENTITY_DENIED",
    "Only the user or an admin of every workspace they belong to may unlink their chat accounts",
)
IDENTITY_ADMIN_DENIED = (
    "CHANNEL_IDENTITY_DENIED",
    "Only an admin of every workspace the user belongs to may link their chat accounts; "
    "users link their own through the link a chat card sends them",
)


# --- connections --------------------------------------------------------------------------------


def require_connection_admin(actor: Actor, *, action: str, audit: bool = True) -> None:
    """403 unless the actor is a human workspace admin (audited for mutations)."""
    if actor.is_workspace_admin:
        return
    code, message = CONNECTION_DENIED
    if not audit:
        raise Forbidden(message, code=code)
    deny(actor, action=action, automation_id=None, code=code, message=message)


def connection_create(*, actor: Actor, kind: str, data: dict[str, Any]) -> ChannelConnection:
    """Create a connection of `kind` in the actor's workspace (admins only)."""
    require_connection_admin(actor, action="channels.connection.create")
    if kind not in ChannelKind.values:
        raise InvalidRequest(
            f"kind must be one of {', '.join(ChannelKind.values)}",
            fields={"kind": ["Unknown chat platform."]},
        )
    connection = ChannelConnection(workspace=actor.workspace, kind=kind)
    _assign(connection, data)
    _check(connection)
    with transaction.atomic():
        _save(connection)
        _audit(actor, connection, "channels.connection.created", changed=sorted(data))
    return connection


def connection_update(
    *, actor: Actor, connection: ChannelConnection, data: dict[str, Any]
) -> ChannelConnection:
    """Change fields of a connection; a secret absent from `data` (or blank) keeps its value."""
    require_connection_admin(actor, action="channels.connection.update")
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().get(pk=connection.pk)
        before = {name: getattr(locked, name) for name in (*CONNECTION_FIELDS, *SECRET_FIELDS)}
        _assign(locked, data)
        _check(locked)
        changed = sorted(n for n, value in before.items() if getattr(locked, n) != value)
        if changed:
            digest = ["secret_digest"] if "signing_secret" in changed else []
            _save(locked, update_fields=[*changed, *digest, "updated_at"])
            released = 0
            if set(changed) & set(VERIFYING_FIELDS):
                released, _ = ChatIdentity.objects.filter(connection=locked).delete()
            _audit(actor, locked, "channels.connection.updated", changed=changed, released=released)
    return locked


def connection_deactivate(*, actor: Actor, connection: ChannelConnection) -> ChannelConnection:
    """Stop posting to a connection and stop accepting its clicks; keeps its cards' history."""
    require_connection_admin(actor, action="channels.connection.deactivate")
    with transaction.atomic():
        locked = ChannelConnection.objects.select_for_update().get(pk=connection.pk)
        if locked.is_active:
            locked.is_active = False
            locked.save(update_fields=["is_active", "updated_at"])
            _audit(actor, locked, "channels.connection.deactivated", changed=["is_active"])
    return locked


def connection_delete(*, actor: Actor, connection: ChannelConnection) -> None:
    """Delete a connection and its card records (the messages stay in the chat)."""
    require_connection_admin(actor, action="channels.connection.delete")
    with transaction.atomic():
        _audit(actor, connection, "channels.connection.deleted", changed=[])
        ChannelConnection.objects.filter(pk=connection.pk).delete()


def connection_validate(
    *,
    kind: str,
    workspace: Workspace | None,
    data: dict[str, Any],
    connection: ChannelConnection | None = None,
) -> None:
    """Check `data` as `connection_create`/`connection_update` will (400 naming the fields, 409
    for a name taken in `workspace`), without saving: lets a form show the errors next to its
    fields."""
    if connection is not None:
        candidate = copy.copy(connection)
    else:
        candidate = ChannelConnection(kind=kind, workspace=workspace)
    _assign(candidate, data)
    _check(candidate)
    if candidate.workspace_id is not None:
        _check_name_free(candidate)
        if connection is None or (data.get("signing_secret") or "").strip():
            _check_secret_free(candidate)


def _assign(connection: ChannelConnection, data: dict[str, Any]) -> None:
    for name in CONNECTION_FIELDS:
        if name in data:
            value = data[name]
            setattr(connection, name, value.strip() if isinstance(value, str) else value)
    for name in SECRET_FIELDS:
        value = (data.get(name) or "").strip()
        if value:  # write-only: blank means "keep what is stored"
            setattr(connection, name, value)
    connection.secret_digest = secret_digest(connection.kind, connection.signing_secret)


def _check(connection: ChannelConnection) -> None:
    """Everything the kind needs is present and well-formed (400 naming the fields)."""
    errors: dict[str, list[str]] = {}
    if not connection.name:
        errors["name"] = ["Required."]
    for name in REQUIRED[connection.kind]:
        if not getattr(connection, name):
            errors.setdefault(name, ["Required for this platform."])
    if connection.uses_deployment_app and not settings.FLOWGATE_SLACK_SIGNING_SECRET:
        errors["signing_secret"] = [NO_DEPLOYMENT_APP]
    for name in SECRET_FIELDS:
        if len(getattr(connection, name) or "") > MAX_SECRET:
            errors[name] = [f"At most {MAX_SECRET} characters."]
    for name in CONNECTION_FIELDS:
        field = ChannelConnection._meta.get_field(name)
        value = getattr(connection, name)
        if isinstance(value, str) and field.max_length and len(value) > field.max_length:
            errors[name] = [f"At most {field.max_length} characters."]
    if connection.kind == ChannelKind.DISCORD and connection.public_key:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(connection.public_key))
        except ValueError:
            errors["public_key"] = ["Not an Ed25519 public key (64 hex digits)."]
    if connection.kind == ChannelKind.TELEGRAM:
        if connection.signing_secret and not TELEGRAM_SECRET.fullmatch(connection.signing_secret):
            errors["signing_secret"] = ["1-256 characters: letters, digits, '_' and '-'."]
        if connection.bot_token and not TELEGRAM_TOKEN.fullmatch(connection.bot_token):
            errors["bot_token"] = ["Not a Telegram bot token (<bot id>:<secret>)."]
    if errors:
        raise InvalidRequest("Invalid chat connection", fields=errors)


def _check_name_free(connection: ChannelConnection) -> None:
    taken = (
        ChannelConnection.objects.filter(
            workspace=connection.workspace_id, kind=connection.kind, name=connection.name
        )
        .exclude(pk=connection.pk)
        .exists()
    )
    if taken:
        raise _name_taken(connection)


def _check_secret_free(connection: ChannelConnection) -> None:
    """400 when the verifying secret is another workspace's (or the deployment app's): either
    could then sign requests the other verifies (`channels.secrets`). Compared by digest, under
    a transaction-scoped lock on the digest so two workspaces saving it at once cannot both win.
    """
    digest = connection.secret_digest
    if not digest:
        return
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(digest[:15], 16)])
    taken = (
        digest == deployment_slack_digest()
        or ChannelConnection.objects.filter(secret_digest=digest)
        .exclude(workspace=connection.workspace_id)
        .exists()
    )
    if taken:
        raise InvalidRequest(
            "Invalid chat connection",
            code="CHANNEL_SECRET_IN_USE",
            fields={"signing_secret": [SECRET_IN_USE]},
        )


def _save(connection: ChannelConnection, **kwargs) -> None:
    _check_name_free(connection)
    if "secret_digest" in kwargs.get("update_fields", ["secret_digest"]):
        _check_secret_free(connection)
    try:
        with transaction.atomic():
            connection.save(**kwargs)
    except IntegrityError:  # a concurrent create with the same name
        raise _name_taken(connection) from None


def _name_taken(connection: ChannelConnection) -> Conflict:
    message = f"A {connection.kind} connection named {connection.name!r} exists in this workspace"
    return Conflict(message, code="CHANNEL_CONNECTION_EXISTS", fields={"name": [message]})


def _audit(
    actor: Actor, connection: ChannelConnection, event_type: str, *, changed, released: int = 0
) -> None:
    audit_record(
        workspace=connection.workspace,
        event_type=event_type,
        actor=actor,
        payload={
            "connectionID": connection.pk,
            "kind": connection.kind,
            "name": connection.name,
            "channelID": connection.channel_id,
            "isActive": connection.is_active,
            "changed": [n for n in changed if n not in SECRET_FIELDS],
            "secretsChanged": [n for n in changed if n in SECRET_FIELDS],
            "identitiesReleased": released,
        },
    )


# --- identities -----------------------------------------------------------------------------------


def identity_link(*, actor: Actor, user: User, account: ChatAccount) -> ChatIdentity:
    """An admin's (API, admin console) link of a chat account to `user`: created *unconfirmed*.

    It decides nothing until `user` confirms it through the link page (`identity_confirm`): an
    admin controls the connections' secrets, so a link they assert could let them speak for
    `user` in chat. Only a human workspace admin who may change `user`'s links
    (`identity_may_change`) may create one. Creating it again is a no-op (the display name is
    updated); a link the user already proved is returned as it is.
    """
    memberships = _authorize_identity(actor, user, action="channels.identity.link", admin_only=True)
    identity_validate(account)
    with transaction.atomic():
        existing = (
            ChatIdentity.objects.select_for_update()
            .filter(user=user, **_account_fields(account))
            .order_by("connection_id")  # a proven link (non-null) before the unconfirmed one
            .first()
        )
        if existing is not None:
            _rename(actor, existing, account, memberships)
            return existing
        identity = _create(user=user, account=account, connection=None)
        _audit_identity(actor, identity, memberships, "channels.identity.linked")
    return identity


def identity_confirm(
    *, actor: Actor, account: ChatAccount, connection: ChannelConnection, token: str
) -> ChatIdentity:
    """The link page: the signed-in user proves `account` through `connection` (SPEC §6.4:
    identity is the Flowgate user, so only the user themself can make a link count).

    The page has already made the user re-enter their password (`channels.views`). Binds the
    account on `connection` to the actor's user, consuming their unconfirmed link of the same
    account if an admin created one, and uses up `token` (a link works once: 409
    `CHANNEL_LINK_USED` after). 409 `CHANNEL_IDENTITY_TAKEN` (audited) when the account is proven
    for another user on this connection: that link must be removed first.
    """
    user = actor.user
    if not (actor.is_human and user is not None and actor.workspace.pk == connection.workspace_id):
        code, message = IDENTITY_DENIED
        deny(
            actor,
            action="channels.identity.confirm",
            automation_id=None,
            code=code,
            message=message,
        )
    if account.kind != connection.kind:
        raise InvalidRequest("The chat account is not of this connection's platform")
    identity_validate(account)
    memberships = _memberships(user)
    with transaction.atomic():
        proven = (
            ChatIdentity.objects.select_for_update()
            .select_related("user")
            .filter(connection=connection, **_account_fields(account))
            .first()
        )
        if proven is None or proven.user_id == user.pk:
            link_token_use(token)
            return _confirm(actor, user, account, connection, proven, memberships)
    # Linked to someone else: refused, and the attempt is recorded (a phished link, or an
    # account changing hands) in a transaction of its own, since the request fails.
    for membership in memberships:
        audit_record_committed(
            workspace=membership.workspace,
            event_type="automation.governance.denied",
            actor=actor,
            payload={
                "action": "channels.identity.confirm",
                "code": "CHANNEL_IDENTITY_TAKEN",
                "status": 409,
                "identityID": proven.pk,
                "kind": account.kind,
                "teamID": account.team_id,
                "chatUserID": account.user_id,
                "connectionID": connection.pk,
                "source": actor.source,
            },
        )
    raise _taken(account)


def _confirm(
    actor: Actor,
    user: User,
    account: ChatAccount,
    connection: ChannelConnection,
    proven: ChatIdentity | None,
    memberships: list[Membership],
) -> ChatIdentity:
    if proven is not None:
        _rename(actor, proven, account, memberships)
        return proven
    pending = (
        ChatIdentity.objects.select_for_update()
        .filter(user=user, connection=None, **_account_fields(account))
        .first()
    )
    if pending is None:
        identity = _create(user=user, account=account, connection=connection)
    else:
        pending.connection, pending.confirmed_at = connection, timezone.now()
        pending.display_name = account.display_name or pending.display_name
        pending.save(update_fields=["connection", "confirmed_at", "display_name"])
        identity = pending
    _audit_identity(actor, identity, memberships, "channels.identity.confirmed")
    return identity


def link_token_use(token: str) -> None:
    """Use up a link token in the caller's transaction; 409 when it was used before."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        with transaction.atomic():
            LinkTokenUse.objects.create(token_digest=digest)
    except IntegrityError:
        raise Conflict(
            "This link was already used. Press the button on the approval card again to get a "
            "new one.",
            code="CHANNEL_LINK_USED",
        ) from None


def link_tokens_forget(*, now) -> int:
    """Forget used link tokens that would have expired anyway (one DELETE); how many were."""
    cutoff = now - timedelta(seconds=LINK_MAX_AGE_S)
    deleted, _ = LinkTokenUse.objects.filter(used_at__lt=cutoff).delete()
    return deleted


def identity_unlink(*, actor: Actor, identity: ChatIdentity) -> None:
    """Remove a link: the chat account's clicks no longer count for anyone."""
    memberships = _authorize_identity(actor, identity.user, action="channels.identity.unlink")
    with transaction.atomic():
        deleted, _ = ChatIdentity.objects.filter(pk=identity.pk).delete()
        if deleted:
            _audit_identity(actor, identity, memberships, "channels.identity.unlinked")


def identity_may_change(by: User | None, user: User) -> bool:
    """Whether `by` may link or unlink chat accounts of `user` (the module docstring's rule)."""
    if by is None or not by.is_human:
        return False
    if by.pk == user.pk or by.is_superuser:
        return True
    theirs = set(Membership.objects.filter(user=user).values_list("workspace_id", flat=True))
    administered = set(
        Membership.objects.filter(user=by, role=Role.ADMIN).values_list("workspace_id", flat=True)
    )
    return bool(theirs) and theirs <= administered


def _authorize_identity(
    actor: Actor, user: User, *, action: str, admin_only: bool = False
) -> list[Membership]:
    """The user's memberships, once the actor may change their links; 403 (audited) otherwise.
    `admin_only`: the user themself is not enough (creating a link outside the link page)."""
    if not user.is_human:
        raise InvalidRequest(
            "Only human users can be linked to chat accounts: only humans decide gates",
            code="CHANNEL_IDENTITY_NOT_HUMAN",
        )
    allowed = actor.is_human and identity_may_change(actor.user, user)
    if admin_only:
        allowed = allowed and actor.is_workspace_admin
    if not allowed:
        code, message = IDENTITY_ADMIN_DENIED if admin_only else IDENTITY_DENIED
        deny(actor, action=action, automation_id=None, code=code, message=message)
    return _memberships(user)


def _memberships(user: User) -> list[Membership]:
    return list(Membership.objects.select_related("workspace__organization").filter(user=user))


def identity_validate(account: ChatAccount) -> None:
    """The account names what a click would (400 naming the fields): lets a form check first."""
    if account.kind not in ChannelKind.values:
        raise InvalidRequest("Unknown chat platform", fields={"kind": ["Unknown chat platform."]})
    if not account.user_id:
        raise InvalidRequest(
            "A chat user id is required", fields={"external_user_id": ["Required."]}
        )
    if account.kind == ChannelKind.SLACK and not account.team_id:
        # Slack user ids are per team: a click always names its team, so this link could
        # never match one.
        raise InvalidRequest(
            "A Slack account needs its team id", fields={"external_team_id": ["Required."]}
        )


def _account_fields(account: ChatAccount) -> dict[str, str]:
    return {
        "kind": account.kind,
        "external_team_id": account.team_id,
        "external_user_id": account.user_id,
    }


def _rename(
    actor: Actor, identity: ChatIdentity, account: ChatAccount, memberships: list[Membership]
) -> None:
    """Take the account's current display name; audited like every change of a link."""
    if account.display_name and identity.display_name != account.display_name:
        previous = identity.display_name
        identity.display_name = account.display_name
        identity.save(update_fields=["display_name"])
        _audit_identity(
            actor,
            identity,
            memberships,
            "channels.identity.renamed",
            previousDisplayName=previous,
        )


def _create(
    *, user: User, account: ChatAccount, connection: ChannelConnection | None
) -> ChatIdentity:
    try:
        with transaction.atomic():
            return ChatIdentity.objects.create(
                user=user,
                connection=connection,
                confirmed_at=timezone.now() if connection is not None else None,
                display_name=account.display_name,
                **_account_fields(account),
            )
    except IntegrityError:  # linked concurrently
        raise _taken(account) from None


def _taken(account: ChatAccount) -> Conflict:
    return Conflict(
        f"This {account.kind.title()} account is linked to another Flowgate user; "
        "it must be unlinked first",
        code="CHANNEL_IDENTITY_TAKEN",
    )


def _audit_identity(
    actor: Actor,
    identity: ChatIdentity,
    memberships: list[Membership],
    event_type: str,
    **extra: Any,
) -> None:
    payload = {
        "identityID": identity.pk,
        "user": identity.user.username,
        "kind": identity.kind,
        "teamID": identity.external_team_id,
        "chatUserID": identity.external_user_id,
        "displayName": identity.display_name,
        "connectionID": identity.connection_id,
        "confirmed": identity.is_confirmed,
        "source": actor.source,
        **extra,
    }
    for membership in memberships:
        audit_record(
            workspace=membership.workspace, event_type=event_type, actor=actor, payload=payload
        )
