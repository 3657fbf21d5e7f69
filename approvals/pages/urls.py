"""Mounted at /approvals/ by config/urls.py."""

from django.urls import path

from approvals.pages import views

app_name = "approval_pages"

urlpatterns = [
    path("", views.pending_list, name="pending"),
    path("<str:gate_id>/", views.gate_page, name="gate"),
    path("<str:gate_id>/status/", views.gate_status, name="gate_status"),
]
