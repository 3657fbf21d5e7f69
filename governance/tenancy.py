"""Resolve the workspace (tenant) of an authenticated API request.

A token is bound to one workspace. A session user who belongs to several workspaces names one
with `X-Workspace: <org>/<ws>`; a workspace the user does not belong to answers exactly like a
workspace that does not exist.
"""

from __future__ import annotations

from governance.actors import Actor
from governance.errors import InvalidRequest, NotFound
from governance.models import ApiToken, Membership

WORKSPACE_HEADER = "HTTP_X_WORKSPACE"


class WorkspaceNotFound(NotFound):
    code = "WORKSPACE_NOT_FOUND"
    message = "Workspace not found"


def _split_path(value: str) -> tuple[str, str]:
    org, sep, ws = value.strip().partition("/")
    if not sep or not org or not ws or "/" in ws:
        raise InvalidRequest(
            "X-Workspace must look like <org>/<workspace>", code="INVALID_WORKSPACE"
        )
    return org, ws


def resolve_actor(request) -> Actor:
    """The actor of an authenticated DRF request (request.user / request.auth already set)."""
    user = request.user
    requested = request.META.get(WORKSPACE_HEADER, "").strip()
    memberships = Membership.objects.select_related("workspace__organization", "user").filter(
        user=user
    )
    if isinstance(request.auth, ApiToken):
        token = request.auth
        if requested and _split_path(requested) != (
            token.workspace.organization.slug,
            token.workspace.slug,
        ):
            raise WorkspaceNotFound()
        membership = memberships.filter(workspace_id=token.workspace_id).first()
        if membership is None:
            raise WorkspaceNotFound("The token's user is not a member of its workspace")
        return Actor.for_member(membership)
    if requested:
        org, ws = _split_path(requested)
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
