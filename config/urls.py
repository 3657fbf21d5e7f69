"""Root URLs: the front door, admin, the API under /api, probes, and the approval pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from config.api_docs import RedocDocsView, SwaggerDocsView
from config.front_door import home
from config.health import healthz, readyz
from config.metrics_endpoint import metrics
from governance.api.errors import api_not_found

handler500 = "governance.api.errors.server_error"

# The console is Flowgate's, not "Django administration" (templates/admin/base_site.html).
admin.site.site_header = "Flowgate"
admin.site.site_title = "Flowgate"
admin.site.index_title = "Operator console"
admin.site.enable_nav_sidebar = False  # the content gets the width; the breadcrumbs lead back

api_patterns = [
    path("", include("automations.api.urls")),
    path("", include("approvals.api.urls")),
    path("audit/", include("governance.api.urls")),
    path("channels/", include("channels.api.urls")),
    path("", include("channels.api.webhook_urls")),
    path("", include("governance.api.event_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerDocsView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", RedocDocsView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    re_path(r"^api(/[\s\S]*)?$", api_not_found),  # any character, line breaks too
    path("healthz", healthz, name="healthz"),
    path("channels/", include("channels.urls")),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("approvals/", include("approvals.pages.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
