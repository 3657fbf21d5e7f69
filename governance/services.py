"""Writes to tenancy and principals: workspaces, memberships, clearances, API tokens.

These are used by the management commands, the admin and the demo seed. They are idempotent
where an operator would expect it (creating what exists returns it).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from governance.actors import Actor
from governance.audit import GENESIS_HASH, audit_record
from governance.errors import InvalidRequest, NotFound
from governance.models import (
    DATA_CLASSES,
    ApiToken,
    AuditChainHead,
    Membership,
    Organization,
    PrincipalKind,
    Role,
    User,
    Workspace,
    WorkspaceGroupObjectPermission,
    WorkspaceUserObjectPermission,
    clearance_codename,
)
from governance.tenancy import parse_workspace_path
from governance.tokens import generate_token, token_digest


def workspace_get(path: str) -> Workspace:
    org, ws = parse_workspace_path(path)
    workspace = (
        Workspace.objects.select_related("organization")
        .filter(organization__slug=org, slug=ws)
        .first()
    )
    if workspace is None:
        raise NotFound(f"Workspace {path} does not exist", code="WORKSPACE_NOT_FOUND")
    return workspace


@transaction.atomic
def workspace_create(*, path: str, name: str | None = None) -> tuple[Workspace, bool]:
    """Create `<org>/<ws>` (and its organisation and audit chain head); idempotent.

    Slugs and the name are checked here (400 / CommandError), never left to the database.
    """
    org_slug, ws_slug = parse_workspace_path(path)
    max_name = Workspace._meta.get_field("name").max_length
    if name is not None and (len(name) > max_name or not name.isprintable()):
        raise InvalidRequest(f"A workspace name is at most {max_name} printable characters")
    organization, _ = Organization.objects.get_or_create(slug=org_slug, defaults={"name": org_slug})
    workspace, created = Workspace.objects.get_or_create(
        organization=organization, slug=ws_slug, defaults={"name": name or ws_slug}
    )
    AuditChainHead.objects.get_or_create(workspace=workspace, defaults={"hash": GENESIS_HASH})
    return workspace, created


@dataclass
class MemberResult:
    user: User
    membership: Membership
    user_created: bool


@transaction.atomic
def member_add(
    *,
    workspace: Workspace,
    username: str,
    role: str,
    kind: str = PrincipalKind.HUMAN,
    password: str | None = None,
    clearances: list[str] | tuple[str, ...] = (),
    email: str = "",
    actor: Actor | None = None,
) -> MemberResult:
    """Create the user if needed, set its role in the workspace and grant clearances.

    Idempotent: re-running with the same arguments changes nothing; a different role or
    password updates them. A user's kind is fixed once created.
    """
    if role not in Role.values:
        raise InvalidRequest(f"Unknown role {role!r}")
    _check_username(username)
    if kind not in PrincipalKind.values:
        raise InvalidRequest(f"Unknown principal kind {kind!r}")
    unknown = sorted(set(clearances) - set(DATA_CLASSES))
    if unknown:
        raise InvalidRequest(f"Unknown data classes: {', '.join(unknown)}")
    user, created = User.objects.get_or_create(
        username=username, defaults={"kind": kind, "email": email}
    )
    if not created and user.kind != kind:
        raise InvalidRequest(f"User {username} exists with kind {user.kind}, not {kind}")
    if password is not None:
        if kind != PrincipalKind.HUMAN:
            raise InvalidRequest("Only human users log in with a password")
        user.set_password(password)
        user.save(update_fields=["password"])
    elif created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.update_or_create(
        user=user, workspace=workspace, defaults={"role": role}
    )
    for data_class in clearances:
        assign_perm(f"governance.{clearance_codename(data_class)}", user, workspace)
    audit_record(
        workspace=workspace,
        event_type="governance.member.updated",
        actor=actor or Actor.system(workspace, "cli"),
        payload={"user": username, "kind": kind, "role": role, "clearances": sorted(clearances)},
    )
    return MemberResult(user=user, membership=membership, user_created=created)


def _check_username(username: str) -> None:
    max_length = User._meta.get_field("username").max_length
    try:
        if len(username) > max_length:
            raise ValidationError("too long")
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise InvalidRequest(
            f"A username is 1-{max_length} letters, digits and @/./+/-/_ characters"
        ) from exc


@transaction.atomic
def member_remove(*, membership: Membership, actor: Actor | None = None) -> None:
    """Remove a user from a workspace, with their clearances there (audited).

    Their tokens for the workspace stop authenticating (401) from then on; adding them again
    starts from no clearances. The user row itself stays (it may own automations elsewhere).
    """
    workspace, user = membership.workspace, membership.user
    deleted, _ = Membership.objects.filter(pk=membership.pk).delete()
    if not deleted:
        return
    WorkspaceUserObjectPermission.objects.filter(user=user, content_object=workspace).delete()
    audit_record(
        workspace=workspace,
        event_type="governance.member.removed",
        actor=actor or Actor.system(workspace, "cli"),
        payload={"user": user.username, "role": membership.role},
    )


@transaction.atomic
def token_issue(
    *, user: User, workspace: Workspace, name: str = "", actor: Actor | None = None
) -> tuple[ApiToken, str]:
    """Issue a token for a member; returns the row and the raw secret (shown once)."""
    if not Membership.objects.filter(user=user, workspace=workspace).exists():
        raise InvalidRequest(f"{user.username} is not a member of {workspace.path}")
    raw = generate_token()
    token = ApiToken.objects.create(
        user=user, workspace=workspace, name=name, prefix=raw[:10], digest=token_digest(raw)
    )
    audit_record(
        workspace=workspace,
        event_type="governance.token.issued",
        actor=actor or Actor.system(workspace, "cli"),
        payload={"user": user.username, "token_prefix": token.prefix, "name": name},
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor | None = None) -> ApiToken:
    """Revoke a token (idempotent); requests with it get 401 from then on."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            workspace=token.workspace,
            event_type="governance.token.revoked",
            actor=actor or Actor.system(token.workspace, "cli"),
            payload={"user": token.user.username, "token_prefix": token.prefix},
        )
    return token


def member_clearances(*, workspace: Workspace, user: User) -> list[str]:
    """The data classes `user` is cleared to review in `workspace` (granted to them or to one of
    their groups), in `DATA_CLASSES` order; one query.

    Clearances are personal: unlike guardian's checker, which gives a superuser every
    permission, only granted clearances count, for superusers and workspace admins too
    (docs/security.md, "Clearances are personal"). An inactive user holds none.
    """
    if not user.is_active:
        return []
    codenames = {clearance_codename(c): c for c in DATA_CLASSES}
    to_user = WorkspaceUserObjectPermission.objects.filter(
        content_object=workspace, user=user, permission__codename__in=codenames
    ).values_list("permission__codename", flat=True)
    to_group = WorkspaceGroupObjectPermission.objects.filter(
        content_object=workspace, group__user=user, permission__codename__in=codenames
    ).values_list("permission__codename", flat=True)
    held = set(to_user.union(to_group))
    return [c for c in DATA_CLASSES if clearance_codename(c) in held]


@transaction.atomic
def clearances_set(
    *, workspace: Workspace, user: User, data_classes: list[str], actor: Actor
) -> tuple[list[str], list[str]]:
    """Make `user`'s clearances in `workspace` exactly `data_classes`; audited when they change.

    Returns (added, removed).
    """
    unknown = sorted(set(data_classes) - set(DATA_CLASSES))
    if unknown:
        raise InvalidRequest(f"Unknown data classes: {', '.join(unknown)}")
    current = set(member_clearances(workspace=workspace, user=user))
    wanted = set(data_classes)
    added, removed = sorted(wanted - current), sorted(current - wanted)
    for data_class in added:
        assign_perm(f"governance.{clearance_codename(data_class)}", user, workspace)
    for data_class in removed:
        remove_perm(f"governance.{clearance_codename(data_class)}", user, workspace)
    if added or removed:
        audit_record(
            workspace=workspace,
            event_type="governance.clearances.updated",
            actor=actor,
            payload={"user": user.username, "added": added, "removed": removed},
        )
    return added, removed
