"""Read-only admin for gates and gate decisions (decisions are made through the services)."""

from django.contrib import admin

from approvals.models import Gate, GateDecision


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Gate)
class GateAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "node_id", "round", "status", "requested_at", "expires_at")
    list_filter = ("status", "workspace")
    search_fields = ("id", "run__run_id", "node_id")
    list_select_related = ("run", "workspace__organization")


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ("gate", "decision", "decided_by", "source", "decided_at")
    list_filter = ("decision", "source")
    search_fields = ("gate__id", "run__run_id")
    list_select_related = ("gate", "decided_by")
