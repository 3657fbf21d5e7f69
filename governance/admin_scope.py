"""Workspace scoping for the admin console: staff who are not superusers see and act only within
the workspaces they are members of (SPEC §9).

The admin is a surface like the API, so the tenant boundary is drawn the same way: in the
query. `AdminScope` holds the ids of the workspaces a request's user may see (None for a
superuser: all of them), computed once per request. `WorkspaceScopedAdmin` filters every
queryset the admin builds from (changelists, object pages, actions) by it, answers another
workspace's object exactly like a missing one (404), and limits the workspace and automation
filters' choices to it. Whether a staff member may *change* anything is not decided here: admin
actions call the services, which authorise with `Actor.for_admin` like the API does.

Django's model permissions are not used for these models: a staff member's reach is their
memberships and roles, the one table in `governance.policy`, not a second set of grants.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.http import Http404

from governance.models import Membership, PrincipalKind, Role, Workspace
from governance.policy import WORKSPACE_ACTION_ROLES, WorkspaceAction

_CACHE_ATTRIBUTE = "_flowgate_admin_scope"


@dataclass(frozen=True)
class AdminScope:
    """What one staff user may see in the admin; `None` id sets mean every workspace."""

    workspace_ids: frozenset[int] | None
    roles: dict[int, str]

    @property
    def is_everything(self) -> bool:
        return self.workspace_ids is None

    def sees(self, workspace_id: int) -> bool:
        return self.workspace_ids is None or workspace_id in self.workspace_ids

    def ids_allowing(self, action: WorkspaceAction, *, human: bool) -> frozenset[int] | None:
        """Workspaces where the user's role allows a workspace-level action (None: all)."""
        if self.workspace_ids is None:
            return None
        if not human:
            return frozenset()
        allowed = WORKSPACE_ACTION_ROLES[action]
        return frozenset(ws for ws, role in self.roles.items() if role in allowed)

    def administers(self, workspace_id: int) -> bool:
        """Superusers, and members holding the admin role there (humans only)."""
        return self.workspace_ids is None or self.roles.get(workspace_id) == Role.ADMIN


def admin_scope(request) -> AdminScope:
    """The request user's scope, read once per request (one query for a non-superuser)."""
    scope = getattr(request, _CACHE_ATTRIBUTE, None)
    if scope is None:
        user = request.user
        if not user.is_authenticated:
            # The login page builds the app list too, before anyone has signed in.
            scope = AdminScope(workspace_ids=frozenset(), roles={})
        elif user.is_active and user.is_superuser:
            scope = AdminScope(workspace_ids=None, roles={})
        else:
            roles = dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))
            if user.kind != PrincipalKind.HUMAN:
                roles = {}  # agents and services never use the console
            scope = AdminScope(workspace_ids=frozenset(roles), roles=roles)
        setattr(request, _CACHE_ATTRIBUTE, scope)
    return scope


def scope_queryset(queryset, ids: frozenset[int] | None, workspace_path: str):
    return queryset if ids is None else queryset.filter(**{f"{workspace_path}__in": ids})


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """A model admin whose rows belong to a workspace reached through `workspace_path`.

    Staff see the module and its rows when they are a member of some workspace; the rows are
    those of their workspaces. Subclasses narrow further with `visible_workspace_ids`.
    """

    workspace_path = "workspace"

    def visible_workspace_ids(self, request) -> frozenset[int] | None:
        return admin_scope(request).workspace_ids

    def get_queryset(self, request):
        return scope_queryset(
            super().get_queryset(request), self.visible_workspace_ids(request), self.workspace_path
        )

    def get_object(self, request, object_id, from_field=None):
        """Another workspace's object is a 404, exactly like one that does not exist.

        Read once per request: a page that prepares its context from the object (the run page)
        and Django's change view then share it.
        """
        cache = request.__dict__.setdefault("_flowgate_admin_objects", {})
        key = (self.model, str(object_id), from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        if cache[key] is None:
            raise Http404("Not found")
        return cache[key]

    def has_module_permission(self, request):
        ids = self.visible_workspace_ids(request)
        return ids is None or bool(ids)

    def has_view_permission(self, request, obj=None):
        ids = self.visible_workspace_ids(request)
        if ids is None:
            return True
        if obj is None:
            return bool(ids)
        return self.object_workspace_id(obj) in ids

    def object_workspace_id(self, obj) -> int:
        target = obj
        *hops, last = self.workspace_path.split("__")
        for hop in hops:
            target = getattr(target, hop)
        return getattr(target, f"{last}_id")


class ReadOnlyAdminMixin:
    """Rows written only by the services (or the engine): nothing here adds, edits or deletes."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WorkspaceAdminWritesMixin:
    """Rows a workspace admin manages (chat connections, webhook endpoints): added in, and
    changed or deleted by, the admins of its workspace only; the add form offers only the
    workspaces the user administers. The writes themselves go through the services."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "workspace":
            scope = admin_scope(request)
            workspaces = Workspace.objects.select_related("organization")
            if not scope.is_everything:
                ids = [ws for ws in scope.roles if scope.administers(ws)]
                workspaces = workspaces.filter(pk__in=ids)
            kwargs["queryset"] = workspaces
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        scope = admin_scope(request)
        return scope.is_everything or any(scope.administers(ws) for ws in scope.roles)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_add_permission(request)
        return admin_scope(request).administers(obj.workspace_id)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)


class ScopedWorkspaceFilter(admin.RelatedFieldListFilter):
    """The workspace filter, offering only the workspaces the user may see."""

    def field_choices(self, field, request, model_admin):
        workspaces = Workspace.objects.select_related("organization").order_by(
            "organization__slug", "slug"
        )
        ids = model_admin.visible_workspace_ids(request)
        if ids is not None:
            workspaces = workspaces.filter(pk__in=ids)
        return [(w.pk, w.path) for w in workspaces]
