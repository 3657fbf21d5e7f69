"""API routes of approvals: a run's gate decision (under the run's own path), the caller's
pending approvals, approval requests and standing approvals (docs/agents.md) and delegations
of review authority."""

from django.urls import path

from approvals.api.delegation_views import DelegationDetailView, DelegationListView
from approvals.api.pending_views import PendingApprovalsView
from approvals.api.request_views import (
    ApprovalRequestDecideView,
    ApprovalRequestsView,
    ApprovalRequestView,
)
from approvals.api.standing_views import (
    StandingDetailView,
    StandingListView,
    StandingRevokeView,
)
from approvals.api.views import RunGateView
from automations.api.urls import PREFIX

urlpatterns = [
    path(f"{PREFIX}/runs/<str:run_id>/gate", RunGateView.as_view(), name="run-gate"),
    path("approvals/pending", PendingApprovalsView.as_view(), name="approvals-pending"),
    path("approvals/delegations", DelegationListView.as_view(), name="approvals-delegations"),
    path(
        "approvals/delegations/<int:delegation_id>",
        DelegationDetailView.as_view(),
        name="approvals-delegation",
    ),
    path("approvals/requests", ApprovalRequestsView.as_view(), name="approval-requests"),
    path(
        "approvals/requests/<str:request_id>",
        ApprovalRequestView.as_view(),
        name="approval-request",
    ),
    path(
        "approvals/requests/<str:request_id>/decide",
        ApprovalRequestDecideView.as_view(),
        name="approval-request-decide",
    ),
    path("approvals/standing", StandingListView.as_view(), name="approvals-standing"),
    path(
        "approvals/standing/<str:standing_id>",
        StandingDetailView.as_view(),
        name="approvals-standing-detail",
    ),
    path(
        "approvals/standing/<str:standing_id>/revoke",
        StandingRevokeView.as_view(),
        name="approvals-standing-revoke",
    ),
]
