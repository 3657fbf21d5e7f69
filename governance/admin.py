"""Admin for tenancy, principals, tokens and the (read-only) audit trail.

Membership and clearance changes go through `governance.services` (`member_add`,
`member_remove`, `clearances_set`) with the staff user as the actor, so they are audited exactly
like `manage.py add_member`. Guardian's generic object-permission screen is not offered: it
would change clearances without an audit event.

Staff who are not superusers (`governance.admin_scope`) see the workspaces they belong to and
their members; workspace admins among them change roles and clearances and remove members of
their workspace, read its audit trail (the role that may read it through the API) and revoke its
tokens. Users, organisations, workspaces and groups themselves, and adding a person to a
workspace, stay with superusers: they span tenants (a user can belong to several organisations).
"""

import re
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from governance.actors import Actor
from governance.admin_filters import InputFilter
from governance.admin_paging import DeferringChangeList, LargeTableAdmin
from governance.admin_scope import (
    ReadOnlyAdminMixin,
    ScopedWorkspaceFilter,
    WorkspaceScopedAdmin,
    admin_scope,
)
from governance.audit import verify_chain
from governance.audit_links import audit_event_links
from governance.models import (
    DATA_CLASSES,
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    PrincipalKind,
    User,
    Workspace,
    WorkspaceGroup,
)
from governance.policy import WorkspaceAction
from governance.services import (
    clearances_set,
    member_add,
    member_clearances,
    member_remove,
    token_revoke,
)

# A workspace id as the verify form posts it (digits only, bounded: never a 500 on "²").
ASCII_ID = re.compile(r"[0-9]{1,18}")


class SuperuserOnlyMixin:
    """Deployment-wide rows: only superusers see or change them."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class SuperuserChangesMixin:
    """Visible to the workspace's members; only superusers change it."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(User)
class FlowgateUserAdmin(SuperuserOnlyMixin, UserAdmin):
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
class OrganizationAdmin(SuperuserOnlyMixin, admin.ModelAdmin):
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
class WorkspaceAdmin(SuperuserChangesMixin, WorkspaceScopedAdmin):
    """Workspaces with their members and groups; clearances are set on each membership."""

    workspace_path = "id"
    list_display = ("slug", "organization", "name", "created_at")
    search_fields = ("slug", "name", "organization__slug")
    list_select_related = ("organization",)
    inlines = [MembershipInline, WorkspaceGroupInline]

    def object_workspace_id(self, obj) -> int:
        return obj.pk

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
class MembershipAdmin(WorkspaceScopedAdmin):
    """Memberships and their clearances; saves go through the services (audited).

    Superusers add people to workspaces; a workspace's admins change roles and clearances of
    its members and remove them.
    """

    form = MembershipForm

    list_display = ("user", "workspace", "role", "created_at")
    list_filter = ("role", ("workspace", ScopedWorkspaceFilter))
    search_fields = ("user__username", "workspace__slug")
    list_select_related = ("user", "workspace__organization")
    autocomplete_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another user or workspace is a removal plus an addition.
        return ("user", "workspace", "created_at") if obj is not None else ("created_at",)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        scope = admin_scope(request)
        if obj is None:
            return scope.is_everything or any(scope.administers(ws) for ws in scope.roles)
        return scope.administers(obj.workspace_id)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

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
        scope = admin_scope(request)
        for membership in queryset.select_related("user", "workspace__organization"):
            if scope.administers(membership.workspace_id):
                _delete_membership(request, membership)


@admin.register(WorkspaceGroup)
class WorkspaceGroupAdmin(SuperuserChangesMixin, WorkspaceScopedAdmin):
    """Which workspace a group belongs to: grants name only groups of the caller's workspace."""

    list_display = ("group", "workspace", "created_at")
    list_filter = (("workspace", ScopedWorkspaceFilter),)
    search_fields = ("group__name", "workspace__slug")
    list_select_related = ("group", "workspace__organization")
    autocomplete_fields = ("group",)


@admin.register(ApiToken)
class ApiTokenAdmin(WorkspaceScopedAdmin):
    """Tokens are issued with `manage.py issue_token`; here they can only be seen and revoked,
    by superusers and the admins of the token's workspace."""

    list_display = ("prefix", "user", "workspace", "name", "created_at", "revoked_at")
    list_filter = (("workspace", ScopedWorkspaceFilter),)
    search_fields = ("prefix", "user__username", "name")
    list_select_related = ("user", "workspace__organization")
    readonly_fields = ("user", "workspace", "name", "prefix", "digest", "created_at", "revoked_at")
    actions = ["revoke"]

    def visible_workspace_ids(self, request):
        scope = admin_scope(request)
        if scope.is_everything:
            return None
        return frozenset(ws for ws in scope.roles if scope.administers(ws))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.select_related("user", "workspace__organization"):
            token_revoke(token=token, actor=Actor.for_admin(request.user, token.workspace))
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).")


class ActorKindFilter(admin.SimpleListFilter):
    """Fixed choices: Django's default would read every distinct value of the audit table."""

    title = "actor kind"
    parameter_name = "actor_kind"

    def lookups(self, request, model_admin):
        return [*PrincipalKind.choices, ("system", "System")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(actor_kind=value) if value else queryset


class EventTypeFilter(InputFilter):
    """An event type or its start: `automation.governance` keeps every governance event."""

    title = "event type"
    parameter_name = "event_type"
    placeholder = "automation.run."

    def filter_queryset(self, queryset, value):
        return queryset.filter(event_type__startswith=value)


class RunFilter(InputFilter):
    """The events naming one run (its id in the payload, as every run event carries it)."""

    title = "run"
    parameter_name = "run_id"
    placeholder = "run-3f…"

    def filter_queryset(self, queryset, value):
        return queryset.filter(payload__runID=value)


class ActorFilter(InputFilter):
    title = "actor"
    parameter_name = "actor"
    placeholder = "username or actor id"

    def filter_queryset(self, queryset, value):
        return queryset.filter(actor_id=value)


class DateFilter(InputFilter):
    """One day (`2026-11-24`) or a range of days (`2026-11-01..2026-11-24`, either end open),
    in the site's time zone; a value that is not a date matches nothing."""

    title = "date"
    parameter_name = "date"
    placeholder = "YYYY-MM-DD or from..to"

    def filter_queryset(self, queryset, value):
        first, _, last = value.partition("..") if ".." in value else (value, "", value)
        try:
            start = _day_start(first) if first else None
            end = _day_start(last) + timedelta(days=1) if last else None
        except ValueError:
            return queryset.none()
        if start is not None:
            queryset = queryset.filter(created_at__gte=start)
        return queryset.filter(created_at__lt=end) if end is not None else queryset


def _day_start(text: str) -> datetime:
    return timezone.make_aware(datetime.combine(date.fromisoformat(text.strip()), time.min))


class AuditChangeList(DeferringChangeList):
    """The audit page's rows, each with the links to the objects it names, found for the whole
    page at once (`governance.audit_links`: a query per kind of object, not per row)."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        links = audit_event_links(self.result_list)
        for event in self.result_list:
            event.object_links = links[event.pk]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    """Read-only; the database refuses changes anyway. "Verify chain" checks whole workspaces.

    Visible, like `GET /api/audit/events`, to the workspace's admins (and superusers). Filtered
    by event type, run, actor and date (typed, never a DISTINCT over the table); each event
    links to the run, gate and automation it names.
    """

    list_display = (
        "at",
        "event_type",
        "actor_kind",
        "actor_id",
        "concerns",
        "workspace",
        "seq",
    )
    list_display_links = ("at", "event_type")
    list_filter = (
        EventTypeFilter,
        RunFilter,
        ActorFilter,
        ActorKindFilter,
        DateFilter,
        ("workspace", ScopedWorkspaceFilter),
    )
    search_fields = ("=event_type", "=actor_id")
    list_select_related = ("workspace__organization",)
    ordering = ("-id",)
    change_list_template = "admin/governance/auditevent/change_list.html"
    actions = ["verify_chains"]

    def get_changelist(self, request, **kwargs):
        return AuditChangeList

    @admin.display(description="at", ordering="created_at")
    def at(self, event):
        """To the second: events a second apart are told apart at a glance."""
        return date_format(timezone.localtime(event.created_at), "Y-m-d H:i:s T")

    @admin.display(description="concerns")
    def concerns(self, event):
        links = event.object_links  # set for the whole page by AuditChangeList
        if not links:
            return "—"
        return format_html(
            '<span class="fg-audit-links">{}</span>',
            format_html_join(
                " ",
                '<a href="{}" data-object="{}" title="{}">{} {}</a>',
                (
                    (link.url, link.label, link.object_id, link.label, _short(link.object_id))
                    for link in links
                ),
            ),
        )

    def visible_workspace_ids(self, request):
        return admin_scope(request).ids_allowing(
            WorkspaceAction.READ_AUDIT,
            human=getattr(request.user, "kind", None) == PrincipalKind.HUMAN,  # anonymous: none
        )

    def get_urls(self):
        verify = path(
            "verify/",
            self.admin_site.admin_view(self.verify_view),
            name="governance_auditevent_verify",
        )
        return [verify, *super().get_urls()]

    @admin.action(description="Verify the chain of the selected events' workspaces")
    def verify_chains(self, request, queryset):
        ids = queryset.order_by().values_list("workspace_id", flat=True).distinct()
        self._verify(request, Workspace.objects.filter(pk__in=ids))

    def verify_view(self, request):
        """The changelist's "Verify chains" button: every workspace shown (or the one filtered)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        workspaces = Workspace.objects.all()
        ids = self.visible_workspace_ids(request)
        if ids is not None:
            workspaces = workspaces.filter(pk__in=ids)
        chosen = request.POST.get("workspace", "")
        if ASCII_ID.fullmatch(chosen):  # str.isdigit() also admits "²", which int() refuses
            workspaces = workspaces.filter(pk=int(chosen))
        self._verify(request, workspaces)
        return HttpResponseRedirect(reverse("admin:governance_auditevent_changelist"))

    def _verify(self, request, workspaces) -> None:
        checked = workspaces.select_related("organization").order_by("organization__slug", "slug")
        for workspace in checked:
            result = verify_chain(workspace)
            if result.ok:
                self.message_user(
                    request,
                    f"Audit chain of {workspace.path}: ok ({result.events} events)",
                    level=messages.SUCCESS,
                )
            else:
                brk = result.first_break
                self.message_user(
                    request,
                    f"Audit chain of {workspace.path}: BROKEN at seq {brk.seq}: {brk.reason}",
                    level=messages.ERROR,
                )
        if not checked:
            self.message_user(request, "No audit chain to verify.", level=messages.WARNING)


def _short(object_id: str) -> str:
    """`run-3f2a…` rather than 36 characters of hex in a table cell (the title has it all)."""
    return object_id if len(object_id) <= 16 else f"{object_id[:13]}…"


# The login lockouts (django-axes), registered here rather than by axes (AXES_ENABLE_ADMIN off).
from governance import admin_lockout  # noqa: E402, F401
