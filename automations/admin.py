"""Admin for automations, runs, run nodes and lifecycle events (operator actions come later)."""

from django.contrib import admin, messages
from guardian.admin import GuardedModelAdmin

from automations.models import Automation, LifecycleEvent, Run, RunNode
from automations.services import run_start
from governance.actors import Actor
from governance.errors import FlowgateError


@admin.register(Automation)
class AutomationAdmin(GuardedModelAdmin):
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
