"""Routes under /api/automations/v2 (no trailing slashes; ids are opaque strings)."""

from django.urls import path

from automations.api import run_views, views

PREFIX = "automations/v2"

urlpatterns = [
    path(PREFIX, views.AutomationListView.as_view(), name="automations"),
    path(f"{PREFIX}/runs/<str:run_id>", run_views.RunDetailView.as_view(), name="run"),
    path(f"{PREFIX}/<str:automation_id>", views.AutomationDetailView.as_view(), name="automation"),
    path(f"{PREFIX}/<str:automation_id>/run_now", run_views.RunNowView.as_view(), name="run-now"),
    path(
        f"{PREFIX}/<str:automation_id>/grants",
        views.GrantListView.as_view(),
        name="automation-grants",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/grants/<str:grant_id>",
        views.GrantDetailView.as_view(),
        name="automation-grant",
    ),
]
