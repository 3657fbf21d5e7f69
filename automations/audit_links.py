"""The admin pages of the runs and automations audit events name (`governance.audit_links`):
one query per page of events for each."""

from __future__ import annotations

from django.contrib.admin.utils import quote
from django.db.models import Q
from django.urls import reverse

from automations.models import Automation, Run


def _pairs_query(pairs: set[tuple[int, str]], field: str) -> Q:
    by_workspace: dict[int, list[str]] = {}
    for workspace_id, value in pairs:
        by_workspace.setdefault(workspace_id, []).append(value)
    query = Q(pk__in=[])
    for workspace_id, values in by_workspace.items():
        query |= Q(workspace_id=workspace_id, **{f"{field}__in": values})
    return query


def run_pages(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The run pages, by run id (as `admin_run_list.run_change_url`); only runs that exist."""
    rows = Run.objects.filter(_pairs_query(pairs, "run_id")).values_list("workspace_id", "run_id")
    return {
        (ws, run_id): reverse("admin:automations_run_change", args=[quote(run_id)])
        for ws, run_id in rows
    }


def automation_pages(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """The automation an id names in its workspace: the live one, else the latest deleted one
    (a deleted automation's id is free for a new one)."""
    rows = (
        Automation.objects.filter(_pairs_query(pairs, "automation_id"))
        .order_by("workspace_id", "automation_id", "deleted_at", "-pk")  # live (NULL) first
        .values_list("workspace_id", "automation_id", "pk")
    )
    found: dict[tuple[int, str], str] = {}
    for ws, automation_id, pk in rows:
        found.setdefault(
            (ws, automation_id),
            reverse("admin:automations_automation_change", args=[quote(pk)]),
        )
    return found
