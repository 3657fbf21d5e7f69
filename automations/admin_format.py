"""How the operator's console writes times: to the second, in the server's time zone, and
durations as `1h 02m 05s` (minute resolution hid the order of events that happen together)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(value: datetime | None) -> str:
    if value is None:
        return "—"
    return timezone.localtime(value).strftime(TIMESTAMP_FORMAT)


def duration(start: datetime | None, end: datetime | None, *, now: datetime) -> str:
    """From `start` to `end` (or to `now` while the run goes on); "—" before it started."""
    if start is None:
        return "—"
    seconds = max(int(((end or now) - start).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"
