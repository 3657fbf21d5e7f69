"""Admin for tenancy, principals, tokens and the (read-only) audit trail.

Membership and clearance changes go through `governance.services` (`member_add`,
`member_remove`, `clearances_set`) with the staff user as the actor, so they are audited exactly
like `manage.py add_member`. Guardian's generic object-permission screen is not offered: it
would change clearances without an audit event.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from governance.actors import Actor
from governance.audit import verify_chain
from governance.models import (
    DATA_CLASSES,
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    User,
    Workspace,
    WorkspaceGroup,
)
from governance.services import (
    clearances_set,
    member_add,
    member_clearances,
    member_remove,
    token_revoke,
)


@admin.register(User)
class FlowgateUserAdmin(UserAdmin):
    list_display = ("username", "kind", "email", "is_staff", "is_active")
    list_filter = ("kind", "is_staff", "is_superuser", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Principal", {"fields": ("kind",)}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Principal", {"fields": ("kind",)}))

    def get_readonly_fields(self, request, obj=None):
        # A principal's kind is fixed once created (as in `member_add`): turning an agent into a
        # human would let it decide gates.
        readonly = super().get_readonly_fields(request, obj)
        return (*readonly, "kind") if obj is not None else readonly


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


def _save_membership(request, membership: Membership) -> Membership:
    """Create or update a membership through `member_add` (audited, admin actor)."""
    result = member_add(
        workspace=membership.workspace,
        username=membership.user.username,
        role=membership.role,
        kind=membership.user.kind,
        actor=Actor.for_admin(request.user, membership.workspace),
    )
    return result.membership


def _delete_membership(request, membership: Membership) -> None:
    member_remove(membership=membership, actor=Actor.for_admin(request.user, membership.workspace))


class MembershipInlineForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "role")

    def clean_user(self):
        user = self.cleaned_data["user"]
        if self.instance.pk is not None and user != self.instance.user:
            raise forms.ValidationError(
                "A membership's user cannot change: remove it and add the other user."
            )
        return user


class MembershipInline(admin.TabularInline):
    """Saved by `WorkspaceAdmin.save_formset` through the services, not by the formset."""

    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ("user",)


class WorkspaceGroupInline(admin.TabularInline):
    model = WorkspaceGroup
    extra = 0
    autocomplete_fields = ("group",)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    """Workspaces with their members and groups; clearances are set on each membership."""

    list_display = ("slug", "organization", "name", "created_at")
    list_filter = ("organization",)
    search_fields = ("slug", "name", "organization__slug")
    list_select_related = ("organization",)
    inlines = [MembershipInline, WorkspaceGroupInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            _delete_membership(request, membership)
        for membership in memberships:
            membership.workspace = form.instance
            _save_membership(request, membership)
        return None


class MembershipForm(forms.ModelForm):
    clearances = forms.MultipleChoiceField(
        choices=[(c, c.replace("_", " ")) for c in DATA_CLASSES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Data classes this member may review on gates.",
    )

    class Meta:
        model = Membership
        fields = ("user", "workspace", "role")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["clearances"].initial = member_clearances(
                workspace=self.instance.workspace, user=self.instance.user
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Memberships and their clearances; saves go through the services (audited)."""

    form = MembershipForm

    list_display = ("user", "workspace", "role", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__username", "workspace__slug")
    list_select_related = ("user", "workspace__organization")
    autocomplete_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another user or workspace is a removal plus an addition.
        return ("user", "workspace", "created_at") if obj is not None else ("created_at",)

    def save_model(self, request, obj, form, change):
        saved = _save_membership(request, obj)
        obj.pk, obj.created_at = saved.pk, saved.created_at
        clearances_set(
            workspace=saved.workspace,
            user=saved.user,
            data_classes=form.cleaned_data.get("clearances", []),
            actor=Actor.for_admin(request.user, saved.workspace),
        )

    def delete_model(self, request, obj):
        _delete_membership(request, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "workspace__organization"):
            _delete_membership(request, membership)


@admin.register(WorkspaceGroup)
class WorkspaceGroupAdmin(admin.ModelAdmin):
    """Which workspace a group belongs to: grants name only groups of the caller's workspace."""

    list_display = ("group", "workspace", "created_at")
    list_filter = ("workspace",)
    search_fields = ("group__name", "workspace__slug")
    list_select_related = ("group", "workspace__organization")
    autocomplete_fields = ("group",)


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
            token_revoke(token=token, actor=Actor.for_admin(request.user, token.workspace))
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
