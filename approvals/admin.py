"""Gates and gate decisions in the admin, scoped to the staff user's workspaces.

Their rows are never edited here: they are evidence to read, and each gate page lists its
decision history. Each gate page shows first what is under review (the upstream outputs as the
opening reviewed them and the downstream plan: the approval page's own include,
`templates/approvals/under_review.html`), then, for an open gate, its decisions
(`approvals.admin_decide`), taken through `approvals.decisions.gate_decide` like on every other
surface.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path

from approvals.admin_decide import decide_view, decision_context
from approvals.models import Gate, GateDecision
from approvals.pages.gate_view import reviewed_content
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
    list_display = (
        "id",
        "run",
        "node_id",
        "round",
        "status",
        "requested_at",
        "expires_at",
        "lacks_independent_reviewer",
    )
    list_filter = (
        "status",
        "lacks_independent_reviewer",
        ("workspace", ScopedWorkspaceFilter),
    )
    search_fields = ("=id", "=run__run_id")
    list_select_related = ("run",)
    list_defer = (
        "run__automation_snapshot",
        "run__last_failure",
        *(
            f"run__automation__{name}"
            for name in ("flow", "agents", "execution", "metadata", "handoff_config", "description")
        ),
    )
    ordering = ("-requested_at", "-round")
    # The reviewed snapshot is shown readably above the fields (under review, the plan).
    exclude = ("reviewed",)
    inlines = [GateDecisionInline]
    change_form_template = "admin/approvals/gate/change_form.html"

    def get_queryset(self, request):
        # The run's automation: whether the user may decide is judged on it (eligibility).
        return (
            super()
            .get_queryset(request)
            .select_related("run__automation", "requested_by", "workspace__organization")
        )

    def get_urls(self):
        decide = self.admin_site.admin_view(self.decide_view)
        return [
            path("<path:object_id>/decide/", decide, name="approvals_gate_decide"),
            *super().get_urls(),
        ]

    def decide_view(self, request, object_id):
        return decide_view(self, request, object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        gate = self.get_object(request, object_id)  # 404 outside the user's workspaces
        if not self.has_view_permission(request, gate):
            raise PermissionDenied
        context = {
            **(extra_context or {}),
            **reviewed_content(gate),
            **decision_context(request, gate),
        }
        return super().change_view(request, object_id, form_url, context)


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdminMixin, LargeTableAdmin, WorkspaceScopedAdmin):
    workspace_path = "gate__workspace"
    list_display = ("gate", "decision", "decided_by", "source", "decided_at")
    list_filter = ("decision", "source")
    search_fields = ("=gate__id", "=run__run_id")
    list_select_related = ("gate", "decided_by")
    ordering = ("-decided_at", "-id")
