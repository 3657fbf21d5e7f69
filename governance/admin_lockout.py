"""The login lockouts in the admin (django-axes' AccessAttempt): superusers see and release them.

Only superusers: an attempt names an account and address of any organisation. Deleting an
attempt, or the "Unlock" action, releases the lockout through `lockout_release`, audited.
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages

from governance.login_lockout import lockout_release


@admin.register(AccessAttempt)
class LoginLockoutAdmin(AccessAttemptAdmin):
    actions = ("unlock",)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    @admin.action(description="Unlock the selected accounts (audited)", permissions=["delete"])
    def unlock(self, request, queryset):
        released = lockout_release(by=request.user, attempts=queryset)
        self.message_user(request, f"Released {released} lockout record(s).", messages.SUCCESS)

    def delete_model(self, request, obj) -> None:
        lockout_release(by=request.user, attempts=[obj])

    def delete_queryset(self, request, queryset) -> None:
        lockout_release(by=request.user, attempts=queryset)
