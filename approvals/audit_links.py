"""The admin page of the gate an audit event names (`governance.audit_links`): one query per
page of events."""

from __future__ import annotations

from django.contrib.admin.utils import quote
from django.db.models import Q
from django.urls import reverse

from approvals.models import Gate


def gate_pages(pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    query = Q(pk__in=[])
    for workspace_id, gate_id in pairs:
        query |= Q(workspace_id=workspace_id, pk=gate_id)
    rows = Gate.objects.filter(query).values_list("workspace_id", "pk")
    return {(ws, pk): reverse("admin:approvals_gate_change", args=[quote(pk)]) for ws, pk in rows}
