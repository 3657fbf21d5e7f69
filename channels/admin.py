"""Admin for chat connections (secrets write-only), identities and the card message map.

Connections and identities are saved through `channels.services` as the staff user
(`Actor.for_admin`), so the admin authorises and audits exactly like the API. A staff user who is
not a superuser sees the rows of their workspaces and changes only those they administer.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpResponseRedirect

from channels import services
from channels.linking import ChatAccount
from channels.models import ApprovalMessage, ChannelConnection, ChatIdentity
from channels.webhooks import admin as webhooks_admin  # noqa: F401  (registers its models)
from governance.actors import Actor
from governance.admin_scope import (
    ReadOnlyAdminMixin,
    ScopedWorkspaceFilter,
    WorkspaceAdminWritesMixin,
    WorkspaceScopedAdmin,
    admin_scope,
)
from governance.errors import FlowgateError, Forbidden
from governance.models import Membership, PrincipalKind, User

EDITABLE = (*services.CONNECTION_FIELDS, *services.SECRET_FIELDS)


def _secret(help_text: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=services.MAX_SECRET,
        widget=forms.PasswordInput(render_value=False),
        help_text=f"{help_text} Write-only: leave blank to keep the stored value.",
    )


class ChannelConnectionForm(forms.ModelForm):
    """Secrets are never rendered back; the service's checks (a name taken in the workspace
    too, which on the change page Django cannot check: workspace and kind are read-only there)
    run as form validation."""

    bot_token = _secret("Bot token.")
    signing_secret = _secret(
        "Slack signing secret (on a new Slack connection, leave blank to use this deployment's "
        "Slack app: its clicks may then decide consequential approvals) or Telegram webhook "
        "secret."
    )

    class Meta:
        model = ChannelConnection
        fields = ("workspace", "kind", *EDITABLE)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        existing = self.instance if self.instance.pk else None
        kind = existing.kind if existing else cleaned.get("kind")
        workspace = existing.workspace if existing else cleaned.get("workspace")
        try:
            services.connection_validate(
                kind=kind, workspace=workspace, data=connection_data(cleaned), connection=existing
            )
        except FlowgateError as exc:
            _form_errors(self, exc)
        return cleaned


def connection_data(cleaned: dict) -> dict:
    return {name: cleaned[name] for name in EDITABLE if name in cleaned}


@admin.register(ChannelConnection)
class ChannelConnectionAdmin(WorkspaceAdminWritesMixin, WorkspaceScopedAdmin):
    form = ChannelConnectionForm
    list_display = ("name", "kind", "workspace", "channel_id", "assurance", "is_active")
    list_filter = ("kind", "is_active", ("workspace", ScopedWorkspaceFilter))
    search_fields = ("name", "channel_id")
    list_select_related = ("workspace__organization",)
    actions = ("deactivate",)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "kind") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        data = connection_data(form.cleaned_data)
        actor = Actor.for_admin(request.user, obj.workspace)
        if change:
            saved = services.connection_update(actor=actor, connection=obj, data=data)
        else:
            saved = services.connection_create(actor=actor, kind=obj.kind, data=data)
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at

    def delete_model(self, request, obj):
        actor = Actor.for_admin(request.user, obj.workspace)
        services.connection_delete(actor=actor, connection=obj)

    def delete_queryset(self, request, queryset):
        for connection in queryset.select_related("workspace__organization"):
            self.delete_model(request, connection)

    @admin.action(description="Deactivate selected connections")
    def deactivate(self, request, queryset):
        for connection in queryset.select_related("workspace__organization"):
            try:
                services.connection_deactivate(
                    actor=Actor.for_admin(request.user, connection.workspace),
                    connection=connection,
                )
            except FlowgateError as exc:
                self.message_user(request, f"{connection}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{connection}: deactivated.")


class ChatIdentityForm(forms.ModelForm):
    """An admin's link is created unconfirmed (`services.identity_link`); the service's checks
    run here, so a refusal is a form error, never a 500."""

    class Meta:
        model = ChatIdentity
        fields = ("user", "kind", "external_team_id", "external_user_id", "display_name")

    request = None  # set by ChatIdentityAdmin.get_form

    def clean_user(self):
        user = self.cleaned_data["user"]
        if not services.identity_may_change(self.request.user, user):
            raise forms.ValidationError(
                "You may link accounts only of users whose every workspace you administer."
            )
        return user

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            services.identity_validate(identity_account(cleaned))
        except FlowgateError as exc:
            _form_errors(self, exc)
        return cleaned


def identity_account(values: dict) -> ChatAccount:
    return ChatAccount(
        kind=values["kind"],
        team_id=(values.get("external_team_id") or "").strip(),
        user_id=(values.get("external_user_id") or "").strip(),
        display_name=(values.get("display_name") or "").strip(),
    )


def _form_errors(form: forms.ModelForm, exc: FlowgateError) -> None:
    """A service's refusal as errors next to the fields it names (else the form's)."""
    fields = exc.extra.get("fields") or {}
    for name, problems in fields.items():
        form.add_error(name if name in form.fields else None, problems)
    if not fields:
        form.add_error(None, exc.message)


@admin.register(ChatIdentity)
class ChatIdentityAdmin(WorkspaceScopedAdmin):
    """Links are added (unconfirmed) or removed, never edited (a changed link is another chat
    account). Only the user confirms a link, on the link page a chat card sends them."""

    form = ChatIdentityForm
    workspace_path = "user__memberships__workspace"
    list_display = (
        "user",
        "kind",
        "external_team_id",
        "external_user_id",
        "display_name",
        "connection",
        "confirmed_at",
    )
    list_filter = ("kind",)
    search_fields = ("user__username", "external_user_id", "display_name")
    list_select_related = ("user", "connection")

    def get_queryset(self, request):
        return super().get_queryset(request).distinct()

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request = request
        return form

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = linkable_users(admin_scope(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request, obj=None):
        scope = admin_scope(request)
        if obj is None or scope.is_everything:
            return super().has_view_permission(request)
        return Membership.objects.filter(
            user=obj.user_id, workspace__in=scope.workspace_ids
        ).exists()

    def has_add_permission(self, request):
        scope = admin_scope(request)
        return scope.is_everything or any(scope.administers(ws) for ws in scope.roles)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return self.has_add_permission(request)
        return services.identity_may_change(request.user, obj.user)

    def save_model(self, request, obj, form, change):
        try:
            saved = services.identity_link(
                actor=self._actor(request, obj.user),
                user=obj.user,
                account=identity_account(form.cleaned_data),
            )
        except FlowgateError as exc:  # changed since the form was checked (a concurrent link)
            self.message_user(request, f"Not linked: {exc.message}", level=messages.ERROR)
            return
        obj.pk, obj.created_at = saved.pk, saved.created_at
        self.message_user(
            request,
            f"{obj.user} must confirm this link on the link page a chat card sends them "
            "before its clicks decide anything.",
            level=messages.WARNING,
        )

    def log_addition(self, request, obj, message):
        if obj.pk is not None:  # not when the service refused it (save_model said why)
            super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request, obj):
        try:
            services.identity_unlink(actor=self._actor(request, obj.user), identity=obj)
        except FlowgateError as exc:
            self.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)

    def delete_queryset(self, request, queryset):
        for identity in queryset.select_related("user"):
            self.delete_model(request, identity)

    def _actor(self, request, user) -> Actor:
        """The staff user acting in a workspace of `user` they administer (any, for a
        superuser); 403 when there is none."""
        scope = admin_scope(request)
        memberships = Membership.objects.select_related("workspace__organization").filter(user=user)
        for membership in memberships:
            if scope.administers(membership.workspace_id) or request.user.pk == user.pk:
                return Actor.for_admin(request.user, membership.workspace)
        code, message = services.IDENTITY_DENIED
        raise Forbidden(message, code=code)


def linkable_users(scope) -> QuerySet[User]:
    """Humans who are members of a workspace the staff user administers (every member's, for
    a superuser): the users an identity may be added for."""
    users = User.objects.filter(kind=PrincipalKind.HUMAN, memberships__isnull=False)
    if not scope.is_everything:
        administered = [ws for ws in scope.roles if scope.administers(ws)]
        users = users.filter(memberships__workspace__in=administered)
    return users.distinct().order_by("username")


@admin.register(ApprovalMessage)
class ApprovalMessageAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "connection__workspace"
    list_display = ("gate", "connection", "purpose", "state", "message_id", "updated_at")
    list_filter = ("state", "purpose")
    list_select_related = ("gate", "connection")
    show_full_result_count = False
