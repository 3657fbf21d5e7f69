"""Admin for outbound webhooks: endpoints (created, changed and deleted through
`channels.webhooks.services` as the staff user, so authorised and audited as in the API; the
secret is shown once, in the message after saving a new endpoint) and the delivery log, read
only, with a redeliver action."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from channels.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from channels.webhooks import services
from governance.actors import Actor
from governance.admin_scope import (
    ReadOnlyAdminMixin,
    ScopedWorkspaceFilter,
    WorkspaceAdminWritesMixin,
    WorkspaceScopedAdmin,
)
from governance.errors import FlowgateError
from governance.events import declared_event_types


class WebhookEndpointForm(forms.ModelForm):
    """The service's checks (the egress allowlist, known event types) run as validation."""

    event_types = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("workspace", "url", "description", "event_types", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = list(declared_event_types().items())

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            services.url_check(url)
        except FlowgateError as exc:
            raise forms.ValidationError(
                exc.extra.get("fields", {}).get("url") or exc.message
            ) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WorkspaceAdminWritesMixin, WorkspaceScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "workspace", "is_active", "created_at")
    list_filter = ("is_active", ("workspace", ScopedWorkspaceFilter))
    list_select_related = ("workspace__organization",)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        fields = ("url", "description", "event_types", "is_active")
        data = {name: form.cleaned_data[name] for name in fields}
        actor = Actor.for_admin(request.user, obj.workspace)
        if change:
            saved = services.endpoint_update(actor=actor, endpoint=obj, data=data).endpoint
        else:
            created = services.endpoint_create(actor=actor, data=data)
            saved = created.endpoint
            self.message_user(
                request,
                f"Signing secret (shown this once; the receiver verifies with it): "
                f"{created.secret}",
                level=messages.WARNING,
            )
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        services.endpoint_delete(actor=Actor.for_admin(request.user, obj.workspace), endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset.select_related("workspace__organization"):
            self.delete_model(request, endpoint)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "latency_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    """The delivery log. Redelivering goes through the service (workspace admins, audited)."""

    workspace_path = "endpoint__workspace"
    list_display = (
        "pk",
        "endpoint",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_latency_ms",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("endpoint", "event")
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver",)

    @admin.display(description="Event")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.event_type

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related(
            "event", "endpoint__workspace__organization"
        ).order_by("pk"):
            actor = Actor.for_admin(request.user, delivery.endpoint.workspace)
            try:
                again = services.delivery_redeliver(actor=actor, delivery=delivery)
            except FlowgateError as exc:
                self.message_user(request, f"Delivery {delivery.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Delivery {delivery.pk}: redelivery {again.pk} queued.")
