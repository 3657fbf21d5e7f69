"""Route of the event feed, `/api/events`."""

from django.urls import path

from governance.api.event_views import EventFeedView

urlpatterns = [path("events", EventFeedView.as_view(), name="events")]
