"""Read-only admin for gates and gate decisions, scoped to the staff user's workspaces.

Decisions are made through `approvals.decisions.gate_decide` (the API, the approval pages, chat);
here they are evidence to read. Each gate page lists its decision history.
"""

from __future__ import annotations

from django.contrib import admin

from approvals.models import Gate, GateDecision
from governance.admin_paging import LargeTableAdmin
from governance.admin_scope import ReadOnlyAdminMixin, ScopedWorkspaceFilter, WorkspaceScopedAdmin


class GateDecisionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = GateDecision
    extra = 0
    fields = ("decision", "settles", "decided_by", "decider_kind", "source", "reason", "decided_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("decided_by")

    def has_view_permission(self, request, obj=None):
        return True  # shown on a gate page, which is already scoped to the user's workspaces


@admin.register(Gate)
class GateAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    list_display = ("id", "run", "node_id", "round", "status", "requested_at", "expires_at")
    list_filter = ("status", ("workspace", ScopedWorkspaceFilter))
    search_fields = ("=id", "=run__run_id")
    list_select_related = ("run",)
    list_defer = ("run__automation_snapshot", "run__last_failure")
    ordering = ("-requested_at", "-round")
    inlines = [GateDecisionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("run", "workspace__organization")


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    workspace_path = "gate__workspace"
    list_display = ("gate", "decision", "decided_by", "source", "decided_at")
    list_filter = ("decision", "source")
    search_fields = ("=gate__id", "=run__run_id")
    list_select_related = ("gate", "decided_by")
    ordering = ("-decided_at", "-id")
