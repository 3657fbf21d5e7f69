"""Resolve the workspace (tenant) of an authenticated API request.

A token is bound to one workspace. A session user who belongs to several workspaces names one
with `X-Workspace: <org>/<ws>`; a workspace the user does not belong to answers exactly like a
workspace that does not exist.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from rest_framework.exceptions import AuthenticationFailed

from governance.actors import Actor
from governance.errors import InvalidRequest, NotFound
from governance.models import ApiToken, Membership

WORKSPACE_HEADER = "HTTP_X_WORKSPACE"
MAX_SLUG_LENGTH = 64  # Organization.slug and Workspace.slug


class WorkspaceNotFound(NotFound):
    code = "WORKSPACE_NOT_FOUND"
    message = "Workspace not found"


def parse_workspace_path(value: str) -> tuple[str, str]:
    """`<org-slug>/<workspace-slug>` → the two slugs, or 400 `INVALID_WORKSPACE`.

    Both must be slugs of at most 64 characters (what the columns hold), so a malformed path
    (a NUL, a space, 1 kB of text) is refused here instead of reaching the database.
    """
    org, sep, ws = value.strip().partition("/")
    if not sep or not _is_slug(org) or not _is_slug(ws):
        raise InvalidRequest(
            "A workspace path must look like <org>/<workspace>: two slugs (letters, digits, "
            f"'-' or '_') of at most {MAX_SLUG_LENGTH} characters",
            code="INVALID_WORKSPACE",
        )
    return org, ws


def _is_slug(value: str) -> bool:
    if not value or len(value) > MAX_SLUG_LENGTH:
        return False
    try:
        validate_slug(value)
    except ValidationError:
        return False
    return True


def resolve_actor(request) -> Actor:
    """The actor of an authenticated DRF request (request.user / request.auth already set)."""
    user = request.user
    requested = request.META.get(WORKSPACE_HEADER, "").strip()
    memberships = Membership.objects.select_related("workspace__organization", "user").filter(
        user=user
    )
    if isinstance(request.auth, ApiToken):
        token = request.auth
        if requested and parse_workspace_path(requested) != (
            token.workspace.organization.slug,
            token.workspace.slug,
        ):
            raise WorkspaceNotFound()
        # The user and workspace came with the token: only the role is read.
        roles = Membership.objects.filter(user=user, workspace_id=token.workspace_id)
        found = list(roles.values_list("role", flat=True)[:1])
        role = found[0] if found else None
        if role is None:
            # The token outlived its user's membership: it no longer authenticates anyone.
            raise AuthenticationFailed("The token's user is no longer a member of its workspace")
        return Actor(kind=user.kind, workspace=token.workspace, user=user, role=role)
    if requested:
        org, ws = parse_workspace_path(requested)
        membership = memberships.filter(
            workspace__organization__slug=org, workspace__slug=ws
        ).first()
        if membership is None:
            raise WorkspaceNotFound()
        return Actor.for_member(membership)
    found = list(memberships[:2])
    if not found:
        raise WorkspaceNotFound("You are not a member of any workspace")
    if len(found) > 1:
        raise InvalidRequest(
            "You belong to several workspaces; name one with the X-Workspace header",
            code="WORKSPACE_REQUIRED",
        )
    return Actor.for_member(found[0])
