"""Routes under `/api/channels/` (workspace admins)."""

from django.urls import path

from channels.api import views

urlpatterns = [
    path("connections", views.ConnectionListView.as_view(), name="channel-connections"),
    path(
        "connections/<int:connection_id>",
        views.ConnectionDetailView.as_view(),
        name="channel-connection",
    ),
    path("identities", views.IdentityListView.as_view(), name="channel-identities"),
    path(
        "identities/<int:identity_id>",
        views.IdentityDetailView.as_view(),
        name="channel-identity",
    ),
]
