"""The operator's console for automations and runs (SPEC §9).

Nothing here writes a row itself. Every change is a call to the service the API uses, with the
staff user as the actor (`governance.admin_actions`): automation pause / resume / run now, run
pause / resume / cancel / recover, and per-automation grants (guardian object permissions,
through `services.grant_add` / `grant_revoke`, audited; guardian's own object-permission screen
is not offered because it would grant without the audit trail). Automations are created and
edited through the API (validated, versioned, audited), and nothing is deleted here: runs and
their history are evidence the audit trail points at.

Staff who are not superusers see only their workspaces (`governance.admin_scope`). The run and
lifecycle lists never count the whole table (`governance.admin_paging`).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from automations.admin_actions import AUTOMATION_ACTIONS, RUN_PAGE_ACTIONS
from automations.admin_format import duration, timestamp
from automations.admin_run_list import RunChangeList, run_change_url, run_id_search
from automations.admin_run_page import run_page_context
from automations.admin_run_views import (
    confirmed_bulk_action,
    live_fragment,
    run_act,
    run_repair_page,
)
from automations.flow_diagram import flow_graph_svg
from automations.models import Automation, LifecycleEvent, Run
from automations.selectors import automation_grants
from automations.services import grant_add, grant_revoke
from automations.warnings import automation_warnings
from governance.admin_actions import (
    AdminAction,
    ObjectActionForm,
    ReasonActionForm,
    admin_call,
    bulk_action,
)
from governance.admin_paging import LargeTableAdmin
from governance.admin_scope import ReadOnlyAdminMixin, ScopedWorkspaceFilter, WorkspaceScopedAdmin
from governance.policy import GRANTABLE


class AutomationActionForm(ReasonActionForm):
    resume_runs = forms.BooleanField(
        required=False, label="Resume: also resume the runs its pause paused"
    )


class ScopedAutomationFilter(admin.RelatedFieldListFilter):
    """The automation filter, offering only automations of the workspaces the user may see."""

    def field_choices(self, field, request, model_admin):
        automations = Automation.objects.select_related("workspace__organization").order_by(
            "workspace_id", "automation_id", "pk"
        )
        ids = model_admin.visible_workspace_ids(request)
        if ids is not None:
            automations = automations.filter(workspace_id__in=ids)
        rows = automations.only(
            "automation_id", "deleted_at", "workspace__slug", "workspace__organization__slug"
        )
        return [
            (a.pk, f"{a.automation_id} ({a.workspace.path}){' deleted' if a.deleted_at else ''}")
            for a in rows
        ]


def _reason(request) -> dict:
    return {"reason": request.POST.get("reason", "")}


def _automation_inputs(request) -> dict:
    return {**_reason(request), "resume_runs": request.POST.get("resume_runs") == "on"}


class ObjectActionsMixin:
    """Buttons on an object page that run one of `object_actions` (POST `<pk>/act/`)."""

    object_actions: dict[str, AdminAction] = {}

    def act_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, object_id)  # 404 outside the user's workspaces
        form = ObjectActionForm(request.POST)
        if not form.is_valid() or form.cleaned_data["action"] not in self.object_actions:
            self.message_user(request, "Unknown action or invalid input.", level=messages.ERROR)
        else:
            data = form.cleaned_data
            admin_call(
                self,
                request,
                obj,
                obj.workspace,
                self.object_actions[data["action"]],
                reason=data["reason"],
                resume_runs=data["resume_runs"],
            )
        return HttpResponseRedirect(self._change_url(obj))

    def _change_url(self, obj) -> str:
        meta = self.model._meta
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])

    def object_urls(self, *extra):
        meta = self.model._meta
        name = f"{meta.app_label}_{meta.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/act/", wrap(self.act_view), name=f"{name}_act"),
            *(path(route, wrap(view), name=f"{name}_{suffix}") for route, view, suffix in extra),
        ]


@admin.register(Automation)
class AutomationAdmin(ObjectActionsMixin, ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Automations with their status and flow graph; pause, resume, run now and grants."""

    list_display = (
        "automation_id",
        "name",
        "workspace",
        "status",
        "version",
        "created_by",
        "updated_at",
        "deleted_at",
    )
    list_filter = ("status", ("workspace", ScopedWorkspaceFilter))
    search_fields = ("automation_id", "name")
    list_select_related = ("workspace__organization", "created_by")
    fields = (
        "automation_id",
        "name",
        "description",
        "workspace",
        "status",
        "version",
        "created_by",
        "created_at",
        "updated_at",
        "deleted_at",
    )
    readonly_fields = fields
    change_form_template = "admin/automations/automation/change_form.html"
    action_form = AutomationActionForm
    object_actions = AUTOMATION_ACTIONS
    actions = [
        bulk_action(
            name,
            action,
            prepare=lambda qs: qs.select_related("workspace__organization", "created_by"),
            workspace_of=lambda automation: automation.workspace,
            inputs_of=_automation_inputs,
        )
        for name, action in AUTOMATION_ACTIONS.items()
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("workspace__organization", "created_by")

    def get_urls(self):
        return [
            *self.object_urls(("<path:object_id>/grants/", self.grants_view, "grants")),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        automation = self.get_object(request, object_id)
        context = {
            **(extra_context or {}),
            "flow_graph": flow_graph_svg({"flow": automation.flow}),
            "warnings": automation_warnings(automation) if automation is not None else [],
            "grants": automation_grants(automation),
            "grantable": list(GRANTABLE),
            "object_actions": self.object_actions,
        }
        return super().change_view(request, object_id, form_url, context)

    def grants_view(self, request, object_id):
        """Add or revoke a grant on the automation through the audited grant services."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        automation = self.get_object(request, object_id)
        revoke = request.POST.get("revoke", "")
        if revoke:
            action = AdminAction(
                f"Revoke {revoke}",
                lambda actor, a, **_: (
                    grant_revoke(actor=actor, automation=a, grant_id=revoke) or f"revoked {revoke}"
                ),
            )
        else:
            principal = request.POST.get("principal", "user")
            name = request.POST.get("grantee", "").strip()
            permission = request.POST.get("permission", "")
            target = {"username": name} if principal == "user" else {"group_name": name}

            def add(actor, a, **_):
                grant_add(actor=actor, automation=a, permission=permission, **target)
                return f"granted {permission} to {principal} {name}"

            action = AdminAction("Grant", add)
        admin_call(self, request, automation, automation.workspace, action)
        return HttpResponseRedirect(self._change_url(automation))


@admin.register(Run)
class RunAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    """Runs: filters by status, automation and workspace, search by any prefix of a run id;
    the list and the run page (by run id) update live; the actions the run's state allows,
    destructive ones after a confirmation; repair and node retry/requeue/continue from the node
    table (`automations.admin_run_views`, `admin_run_page`, `admin_run_list`)."""

    list_display = (
        "run_id",
        "automation",
        "workspace",
        "status_cell",
        "step_cell",
        "requester",
        "created",
        "duration_cell",
    )
    list_filter = (
        "status",
        ("automation", ScopedAutomationFilter),
        ("workspace", ScopedWorkspaceFilter),
    )
    search_fields = ("run_id",)  # any prefix (`get_search_results`), not the exact id
    search_help_text = "Run id or its beginning, with or without “run-”."
    list_select_related = ("automation", "workspace__organization", "requested_by")
    list_defer = (
        "automation_snapshot",
        "last_failure",
        *(
            f"automation__{name}"
            for name in ("flow", "agents", "execution", "metadata", "handoff_config", "description")
        ),
    )
    ordering = ("-created_at", "-id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "run_id",
                    "automation",
                    "workspace",
                    "status",
                    "requested_by",
                    "trigger_type",
                    "version",
                )
            },
        ),
        (
            "Reasons",
            {"fields": ("detail", "pause_reason", "resume_reason", "stop_kind", "stop_reason")},
        ),
        ("Times", {"fields": ("created", "started", "finished", "updated")}),
        ("Last failure", {"fields": ("last_failure",)}),
    )
    readonly_fields = [
        *(f.name for f in Run._meta.fields),
        "created",
        "started",
        "finished",
        "updated",
    ]
    change_form_template = "admin/automations/run/change_form.html"
    change_list_template = "admin/automations/run/change_list.html"
    action_form = ReasonActionForm
    actions = [
        confirmed_bulk_action(name, action, inputs_of=_reason)
        for name, action in RUN_PAGE_ACTIONS.items()
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("automation", "workspace__organization", "requested_by")
        )

    def get_changelist(self, request, **kwargs):
        return RunChangeList

    def get_search_results(self, request, queryset, search_term):
        return run_id_search(queryset, search_term), False

    def get_object(self, request, object_id, from_field=None):
        """By run id; an all-digit id is the primary key of the older integer URLs."""
        if from_field is None and not str(object_id).isdigit():
            from_field = "run_id"
        return super().get_object(request, object_id, from_field)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("live/", wrap(self.changelist_live_view), name="automations_run_live_list"),
            path("<path:object_id>/act/", wrap(self.act_view), name="automations_run_act"),
            path("<path:object_id>/live/", wrap(self.live_view), name="automations_run_live"),
            path(
                "<path:object_id>/repair/<str:node_id>/",
                wrap(self.repair_view),
                name="automations_run_repair",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if str(object_id).isdigit() and request.method in ("GET", "HEAD"):
            return HttpResponsePermanentRedirect(run_change_url(run))  # an older integer URL
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        context = {
            **(extra_context or {}),
            **run_page_context(run),
            "live_url": reverse("admin:automations_run_live", args=[run.run_id]),
        }
        return super().change_view(request, object_id, form_url, context)

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "live_url": reverse("admin:automations_run_live_list")}
        return super().changelist_view(request, context)

    def live_view(self, request, object_id):
        return live_fragment(self.change_view(request, object_id))

    def changelist_live_view(self, request):
        return live_fragment(self.changelist_view(request))

    def act_view(self, request, object_id):
        return run_act(self, request, self.get_object(request, object_id))

    def repair_view(self, request, object_id, node_id):
        return run_repair_page(self, request, self.get_object(request, object_id), node_id)

    @admin.display(description="Status", ordering="status")
    def status_cell(self, run):
        return _live_cell(run, "status", run.get_status_display(), status=run.status)

    @admin.display(description="Now at")
    def step_cell(self, run):
        return _live_cell(run, "step", getattr(run, "console_step", "") or "—")

    @admin.display(description="Requested by", ordering="requested_by__username")
    def requester(self, run):
        return run.requested_by.username if run.requested_by else "—"

    @admin.display(description="Created", ordering="created_at")
    def created(self, run):
        return timestamp(run.created_at)

    @admin.display(description="Started")
    def started(self, run):
        return timestamp(run.started_at)

    @admin.display(description="Finished")
    def finished(self, run):
        return timestamp(run.finished_at)

    @admin.display(description="Updated")
    def updated(self, run):
        return timestamp(run.updated_at)

    @admin.display(description="Duration")
    def duration_cell(self, run):
        return _live_cell(
            run, "duration", duration(run.started_at, run.finished_at, now=timezone.now())
        )


def _live_cell(run: Run, column: str, text: str, *, status: str = ""):
    """A list cell the list's poller refreshes in place (`data-live-region`, by id), so a
    selection of rows survives the update."""
    return format_html(
        '<span id="fg-run-{}-{}" class="fg-{}" data-live-region data-status="{}">{}</span>',
        run.pk,
        column,
        column,
        status,
        text,
    )


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    """The runs' history, newest first; each run page shows its own timeline."""

    workspace_path = "run__workspace"
    list_display = ("run", "event", "node", "reason", "at_seconds")
    search_fields = ("=run__run_id", "=event")
    list_select_related = ("run",)
    list_defer = ("run__automation_snapshot", "run__last_failure")
    ordering = ("-at", "-id")

    @admin.display(description="Node")
    def node(self, event):
        node_id = event.metadata.get("node_id") if isinstance(event.metadata, dict) else None
        return node_id or "—"

    @admin.display(description="At", ordering="at")
    def at_seconds(self, event):
        return timestamp(event.at)
