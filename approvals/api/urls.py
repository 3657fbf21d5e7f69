"""API routes of approvals: a run's gate decision (under the run's own path) and the
caller's pending approvals."""

from django.urls import path

from approvals.api.pending_views import PendingApprovalsView
from approvals.api.views import RunGateView
from automations.api.urls import PREFIX

urlpatterns = [
    path(f"{PREFIX}/runs/<str:run_id>/gate", RunGateView.as_view(), name="run-gate"),
    path("approvals/pending", PendingApprovalsView.as_view(), name="approvals-pending"),
]
