"""API routes of approvals: a run's gate decision (under the run's own path) and the
caller's pending approvals, and approval requests (docs/agents.md)."""

from django.urls import path

from approvals.api.pending_views import PendingApprovalsView
from approvals.api.request_views import (
    ApprovalRequestDecideView,
    ApprovalRequestsView,
    ApprovalRequestView,
)
from approvals.api.views import RunGateView
from automations.api.urls import PREFIX

urlpatterns = [
    path(f"{PREFIX}/runs/<str:run_id>/gate", RunGateView.as_view(), name="run-gate"),
    path("approvals/pending", PendingApprovalsView.as_view(), name="approvals-pending"),
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
]
