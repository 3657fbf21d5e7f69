"""Admin for automations, runs, run nodes and lifecycle events (operator actions come later).

The admin does not bypass the services: everything here is read-only apart from actions that
call a service (`run_now` → `run_start`, with the staff user as actor). Automations are created
and edited through the API (validated, versioned, audited), and nothing here deletes: runs and
their history are evidence the audit trail points at. Per-automation grants are managed with
`…/grants` in the API (audited), not guardian's object-permission screen.
"""

from django.contrib import admin, messages
from guardian.admin import GuardedModelAdmin

from automations.models import Automation, LifecycleEvent, Run, RunNode
from automations.services import run_start
from governance.actors import Actor
from governance.errors import FlowgateError


@admin.register(Automation)
class AutomationAdmin(GuardedModelAdmin):
    """Read-only view of automations, with the `run_now` action."""

    list_display = (
        "automation_id",
        "name",
        "workspace",
        "status",
        "version",
        "created_by",
        "updated_at",
        "deleted_at",
    )
    list_filter = ("status", "workspace")
    search_fields = ("automation_id", "name")
    list_select_related = ("workspace__organization", "created_by")
    readonly_fields = ("version", "created_at", "updated_at", "deleted_at")
    actions = ["run_now"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # View only: a save here would skip validation, the version bump and the audit event;
        # it also closes guardian's object-permission screen (unaudited grants).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        """Start a run of each selected automation through the same service as the API."""
        for automation in queryset.select_related("workspace__organization", "created_by"):
            actor = Actor.for_admin(request.user, automation.workspace)
            try:
                run = run_start(actor=actor, automation=automation)
            except FlowgateError as exc:
                self.message_user(request, f"{automation}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{automation}: started {run.run_id}")


class RunNodeInline(admin.TabularInline):
    model = RunNode
    extra = 0
    can_delete = False
    readonly_fields = ("node_id", "state", "attempts", "output", "started_at", "finished_at")
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("run_id", "automation", "workspace", "status", "created_at", "finished_at")
    list_filter = ("status", "workspace")
    search_fields = ("run_id", "automation__automation_id")
    list_select_related = ("automation", "workspace__organization")
    show_full_result_count = False
    inlines = [RunNodeInline]
    readonly_fields = [f.name for f in Run._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # View only: saving the form would write the whole row back over the engine's changes.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(admin.ModelAdmin):
    list_display = ("run", "event", "reason", "at")
    list_filter = ("event",)
    search_fields = ("run__run_id", "event")
    list_select_related = ("run",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
