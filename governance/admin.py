"""Admin for tenancy, principals, tokens and the (read-only) audit trail."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from guardian.admin import GuardedModelAdmin

from governance.actors import Actor
from governance.audit import verify_chain
from governance.models import (
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    User,
    Workspace,
)
from governance.services import token_revoke


@admin.register(User)
class FlowgateUserAdmin(UserAdmin):
    list_display = ("username", "kind", "email", "is_staff", "is_active")
    list_filter = ("kind", "is_staff", "is_superuser", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Principal", {"fields": ("kind",)}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Principal", {"fields": ("kind",)}))


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Workspace)
class WorkspaceAdmin(GuardedModelAdmin):
    """Workspaces; guardian's object-permission screen manages data-class clearances."""

    list_display = ("slug", "organization", "name", "created_at")
    list_filter = ("organization",)
    search_fields = ("slug", "name", "organization__slug")
    list_select_related = ("organization",)
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "workspace", "role", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__username", "workspace__slug")
    list_select_related = ("user", "workspace__organization")
    autocomplete_fields = ("user",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py issue_token`; here they can only be seen and revoked."""

    list_display = ("prefix", "user", "workspace", "name", "created_at", "revoked_at")
    list_filter = ("workspace",)
    search_fields = ("prefix", "user__username", "name")
    list_select_related = ("user", "workspace__organization")
    readonly_fields = ("user", "workspace", "name", "prefix", "digest", "created_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.select_related("user", "workspace__organization"):
            actor = Actor(
                kind=request.user.kind, workspace=token.workspace, user=request.user, source="admin"
            )
            token_revoke(token=token, actor=actor)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only; the database refuses changes anyway. "Verify chain" checks whole workspaces."""

    list_display = ("workspace", "seq", "event_type", "actor_kind", "actor_id", "created_at")
    list_filter = ("event_type", "actor_kind", "workspace")
    search_fields = ("event_type", "actor_id")
    list_select_related = ("workspace__organization",)
    show_full_result_count = False
    actions = ["verify_chains"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Verify the chain of the selected events' workspaces")
    def verify_chains(self, request, queryset):
        workspaces = {
            event.workspace for event in queryset.select_related("workspace__organization")
        }
        for workspace in sorted(workspaces, key=lambda w: w.path):
            result = verify_chain(workspace)
            if result.ok:
                self.message_user(request, f"{workspace.path}: chain ok ({result.events} events)")
            else:
                brk = result.first_break
                self.message_user(
                    request,
                    f"{workspace.path}: BROKEN at seq {brk.seq}: {brk.reason}",
                    level=messages.ERROR,
                )
