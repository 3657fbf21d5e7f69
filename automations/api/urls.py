"""Routes under /api/automations/v2 (no trailing slashes; ids are opaque strings)."""

from django.urls import path

from automations.api import (
    automation_control_views,
    handoff_views,
    run_control_views,
    run_list_views,
    run_views,
    trigger_views,
    views,
)

PREFIX = "automations/v2"

urlpatterns = [
    path(PREFIX, views.AutomationListView.as_view(), name="automations"),
    # Before `<automation_id>`: "runs" is a route, never an automation id (ids.RESERVED_IDS).
    path(f"{PREFIX}/runs", run_list_views.RunListView.as_view(), name="runs"),
    path(f"{PREFIX}/runs/<str:run_id>", run_views.RunDetailView.as_view(), name="run"),
    *[
        path(f"{PREFIX}/runs/<str:run_id>/{verb}", view.as_view(), name=f"run-{verb}")
        for verb, view in (
            ("pause", run_control_views.RunPauseView),
            ("resume", run_control_views.RunResumeView),
            ("cancel", run_control_views.RunCancelView),
            ("recover", run_control_views.RunRecoverView),
            ("repair", run_control_views.RunRepairView),
        )
    ],
    *[
        path(
            f"{PREFIX}/runs/<str:run_id>/tasks/<str:node_id>/{verb}",
            view.as_view(),
            name=f"run-task-{verb}",
        )
        for verb, view in (
            ("retry", run_control_views.RunTaskRetryView),
            ("requeue", run_control_views.RunTaskRequeueView),
            ("continue", run_control_views.RunTaskContinueView),
            ("reset_preview", run_control_views.RunTaskResetPreviewView),
        )
    ],
    path(f"{PREFIX}/<str:automation_id>", views.AutomationDetailView.as_view(), name="automation"),
    path(f"{PREFIX}/<str:automation_id>/run_now", run_views.RunNowView.as_view(), name="run-now"),
    path(
        f"{PREFIX}/<str:automation_id>/pause",
        automation_control_views.AutomationPauseView.as_view(),
        name="automation-pause",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/resume",
        automation_control_views.AutomationResumeView.as_view(),
        name="automation-resume",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/runs",
        run_list_views.AutomationRunListView.as_view(),
        name="automation-runs",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/handoffs",
        handoff_views.AutomationHandoffsView.as_view(),
        name="automation-handoffs",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/schedules",
        trigger_views.ScheduleListView.as_view(),
        name="automation-schedules",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/schedules/<str:schedule_id>",
        trigger_views.ScheduleDetailView.as_view(),
        name="automation-schedule",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/webhook_triggers",
        trigger_views.WebhookTriggerListView.as_view(),
        name="automation-webhook-triggers",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/webhook_triggers/<str:trigger_id>",
        trigger_views.WebhookTriggerDetailView.as_view(),
        name="automation-webhook-trigger",
    ),
    path(
        f"{PREFIX}/<str:automation_id>/webhook_triggers/<str:trigger_id>/rotate",
        trigger_views.WebhookTriggerRotateView.as_view(),
        name="automation-webhook-trigger-rotate",
    ),
    path("hooks/<str:token>", trigger_views.HookView.as_view(), name="hook"),
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
