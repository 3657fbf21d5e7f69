"""The run's history: lifecycle events are appended, never changed (SPEC §2, reference §2.10)."""

from __future__ import annotations

from typing import Any

from automations.models import LifecycleEvent, Run


def lifecycle_event(
    run: Run, event: str, *, reason: str = "", stop_kind: str = "", **metadata: Any
) -> LifecycleEvent:
    """An unsaved event, for callers that write several at once with `bulk_create`."""
    return LifecycleEvent(
        run=run, event=event, reason=reason, stop_kind=stop_kind, metadata=metadata
    )


def lifecycle_record(
    run: Run, event: str, *, reason: str = "", stop_kind: str = "", **metadata: Any
) -> LifecycleEvent:
    event_row = lifecycle_event(run, event, reason=reason, stop_kind=stop_kind, **metadata)
    event_row.save()
    return event_row
