"""Scoped reads of governance data: always within the actor's workspace, filtered in the query."""

from __future__ import annotations

from governance.actors import Actor
from governance.models import AuditEvent


def audit_events_page(
    actor: Actor,
    *,
    limit: int,
    event_type: str | None = None,
    actor_id: str | None = None,
    since_seq: int | None = None,
) -> tuple[list[AuditEvent], int | None]:
    """One page of the actor's workspace chain in seq order, and the next page's `since_seq`.

    One query whatever the page size: every rendered field is a column of the event row.
    """
    queryset = AuditEvent.objects.filter(workspace=actor.workspace).order_by("seq")
    if event_type is not None:
        queryset = queryset.filter(event_type=event_type)
    if actor_id is not None:
        queryset = queryset.filter(actor_id=actor_id)
    if since_seq is not None:
        queryset = queryset.filter(seq__gte=since_seq)
    rows = list(queryset[: limit + 1])
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].seq + 1
    return rows, None
