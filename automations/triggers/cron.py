"""Cron expressions in a time zone, through croniter: checked when a schedule is saved, and the
next fire time after a moment.

Accepted: the five standard fields (`30 9 * * mon-fri`), croniter's macros (`@daily`,
`@hourly`, …) and six fields whose first is the second (`*/10 * * * * *`). Fire times are
computed in the schedule's time zone (so `0 9 * * *` stays at 9:00 local across daylight
saving) and stored in UTC. Two consecutive fire times may not be closer than
`FLOWGATE_SCHEDULE_MIN_INTERVAL_S` (a schedule is a trigger, not a busy loop).
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from django.conf import settings

from governance.errors import InvalidRequest

# Fire times looked at when checking the minimum interval.
INTERVAL_SAMPLE = 20


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or 400 `SCHEDULE_TIMEZONE_INVALID`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidRequest(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC",
            code="SCHEDULE_TIMEZONE_INVALID",
            fields={"timezone": ["Unknown time zone."]},
        ) from None


def _iterator(cron: str, start: datetime) -> croniter:
    fields = cron.split()
    if not cron.startswith("@") and len(fields) not in (5, 6):
        raise ValueError("5 fields (minute hour day month weekday) or 6 with seconds first")
    return croniter(cron, start, second_at_beginning=len(fields) == 6)


def next_fire(cron: str, tz: str, after: datetime) -> datetime:
    """The first fire time of `cron` in `tz` strictly after `after` (aware, any zone)."""
    return _iterator(cron, after.astimezone(ZoneInfo(tz))).get_next(datetime)


def check(cron: str, tz: str, now: datetime) -> None:
    """400 unless `cron` parses, `tz` is known and fire times keep the minimum interval."""
    zone = time_zone(tz)
    try:
        iterator = _iterator(cron, now.astimezone(zone))
        times = [iterator.get_next(datetime) for _ in range(INTERVAL_SAMPLE)]
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidRequest(
            f"Invalid cron expression {cron!r}: {exc}",
            code="SCHEDULE_CRON_INVALID",
            fields={"cron": [str(exc)]},
        ) from None
    minimum = settings.FLOWGATE_SCHEDULE_MIN_INTERVAL_S
    closest = min((b - a).total_seconds() for a, b in pairwise(times))
    if closest < minimum:
        raise InvalidRequest(
            f"The schedule fires every {closest:g}s; the minimum is {minimum}s "
            "(FLOWGATE_SCHEDULE_MIN_INTERVAL_S)",
            code="SCHEDULE_CRON_INVALID",
            fields={"cron": [f"Fires more often than every {minimum}s."]},
        )
