"""Admin for chat connections (secrets write-only), identities and the card message map."""

from django import forms
from django.contrib import admin

from channels.models import ApprovalMessage, ChannelConnection, ChatIdentity


class ChannelConnectionForm(forms.ModelForm):
    """Secrets are never rendered back; leaving a secret field blank keeps the stored value."""

    bot_token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    signing_secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))

    class Meta:
        model = ChannelConnection
        fields = (
            "workspace",
            "kind",
            "name",
            "channel_id",
            "external_team_id",
            "application_id",
            "public_key",
            "bot_token",
            "signing_secret",
            "is_active",
        )

    def clean(self):
        cleaned = super().clean()
        for name in ("bot_token", "signing_secret"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        return cleaned


@admin.register(ChannelConnection)
class ChannelConnectionAdmin(admin.ModelAdmin):
    form = ChannelConnectionForm
    list_display = ("name", "kind", "workspace", "channel_id", "is_active")
    list_filter = ("kind", "is_active", "workspace")
    search_fields = ("name", "channel_id")
    list_select_related = ("workspace__organization",)


@admin.register(ChatIdentity)
class ChatIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "external_team_id", "external_user_id", "display_name")
    list_filter = ("kind",)
    search_fields = ("user__username", "external_user_id", "display_name")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(ApprovalMessage)
class ApprovalMessageAdmin(admin.ModelAdmin):
    list_display = ("gate", "connection", "purpose", "state", "message_id", "updated_at")
    list_filter = ("state", "purpose")
    list_select_related = ("gate", "connection")
    show_full_result_count = False
    readonly_fields = [f.name for f in ApprovalMessage._meta.fields]

    def has_add_permission(self, request):
        return False
