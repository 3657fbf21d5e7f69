"""Routes under `/api/webhooks` (workspace admins)."""

from django.urls import path

from channels.api import webhook_views as views

urlpatterns = [
    path("webhooks", views.EndpointListView.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>", views.EndpointDetailView.as_view(), name="webhook"),
    path(
        "webhooks/<int:webhook_id>/deliveries",
        views.DeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver",
        views.RedeliverView.as_view(),
        name="webhook-redeliver",
    ),
]
