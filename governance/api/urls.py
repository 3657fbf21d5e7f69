"""Routes under `/api/audit/`."""

from django.urls import path

from governance.api.audit_views import AuditEventListView, AuditVerifyView

urlpatterns = [
    path("events", AuditEventListView.as_view(), name="audit-events"),
    path("verify", AuditVerifyView.as_view(), name="audit-verify"),
]
