"""Gates, gate decisions and delegations in the admin, scoped to the staff user's workspaces.

Their rows are never edited here: they are evidence to read, and each gate page lists its
decision history. Each gate page shows first what is under review (the upstream outputs as the
opening reviewed them and the downstream plan: the approval page's own include,
`templates/approvals/under_review.html`), then, for an open gate, its decisions
(`approvals.admin_decide`), taken through `approvals.decisions.gate_decide` like on every other
surface. Delegations are listed and revoked (through `approvals.delegation.delegation_revoke`,
authorised and audited as for the API); they are created by the delegator themselves over the API.
Standing approvals likewise (`approvals.standing.standing_revoke`).
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.urls import path

from approvals.admin_decide import decide_view, decision_context
from approvals.delegation import delegation_revoke
from approvals.models import Delegation, Gate, GateDecision, StandingApproval
from approvals.pages.gate_view import reviewed_content
from approvals.standing import standing_revoke
from governance.admin_actions import AdminAction, bulk_action
from governance.admin_paging import LargeTableAdmin
from governance.admin_scope import (
    ReadOnlyAdminMixin,
    ScopedWorkspaceFilter,
    WorkspaceScopedAdmin,
    admin_scope,
)


class GateDecisionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = GateDecision
    extra = 0
    fields = (
        "decision",
        "settles",
        "decided_by",
        "on_behalf_of",
        "decider_kind",
        "source",
        "reason",
        "decided_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("decided_by", "on_behalf_of")

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
    list_display = (
        "gate",
        "decision",
        "settles",
        "decided_by",
        "on_behalf_of",
        "source",
        "decided_at",
    )
    list_filter = ("decision", "source")
    search_fields = ("=gate__id", "=run__run_id")
    list_select_related = ("gate", "decided_by", "on_behalf_of")
    ordering = ("-decided_at", "-id")


def _theirs_or_administered(request, queryset, *people: str):
    """The rows naming the staff user in one of the `people` fields, and every row of the
    workspaces they administer (superusers: every row)."""
    scope = admin_scope(request)
    if scope.is_everything:
        return queryset
    administered = [ws for ws in scope.workspace_ids if scope.administers(ws)]
    theirs = Q(workspace_id__in=administered)
    for field in people:
        theirs |= Q(**{field: request.user})
    return queryset.filter(theirs)


def _revoke(actor, delegation: Delegation) -> str:
    delegation_revoke(actor=actor, delegation_id=delegation.pk)
    return "revoked: the delegate no longer decides with this authority"


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    list_display = ("delegator", "delegate", "starts_at", "ends_at", "revoked_at", "workspace")
    list_filter = (("workspace", ScopedWorkspaceFilter),)
    search_fields = ("=delegator__username", "=delegate__username")
    list_select_related = ("delegator", "delegate", "workspace__organization")
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        """As the API lists them: the delegations the staff member gave or received, and all of
        the workspaces they administer (superusers: every one)."""
        return _theirs_or_administered(
            request, super().get_queryset(request), "delegator", "delegate"
        )

    actions = [
        bulk_action(
            "revoke",
            AdminAction("Revoke the selected delegations", _revoke),
            prepare=lambda queryset: queryset.select_related("workspace__organization"),
            workspace_of=lambda delegation: delegation.workspace,
            inputs_of=lambda request: {},
        )
    ]


def _revoke_standing(actor, grant: StandingApproval) -> str:
    standing_revoke(actor=actor, standing_id=grant.pk, reason="revoked in the admin")
    return "revoked: it approves no more requests"


@admin.register(StandingApproval)
class StandingApprovalAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """Standing approvals and how often each was used; granted over the API (the grantor's own
    decision, with its constraints as JSON), revoked here or there."""

    list_display = (
        "action",
        "grantee",
        "granted_by",
        "expires_at",
        "use_count",
        "max_uses",
        "revoked_at",
        "workspace",
    )
    list_filter = (("workspace", ScopedWorkspaceFilter),)
    search_fields = ("=id", "=action", "=grantee__username", "=granted_by__username")
    list_select_related = ("grantee", "granted_by", "workspace__organization")
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        """The grants the staff member gave, and all of the workspaces they administer."""
        return _theirs_or_administered(request, super().get_queryset(request), "granted_by")

    actions = [
        bulk_action(
            "revoke",
            AdminAction("Revoke the selected standing approvals", _revoke_standing),
            prepare=lambda queryset: queryset.select_related("workspace__organization"),
            workspace_of=lambda grant: grant.workspace,
            inputs_of=lambda request: {},
        )
    ]
