"""API routes of approvals: a run's gate decision (under the run's own path), the caller's
pending approvals and delegations of review authority."""

from django.urls import path

from approvals.api.delegation_views import DelegationDetailView, DelegationListView
from approvals.api.pending_views import PendingApprovalsView
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
]
