"""Gate expiry: when an unanswered gate expires and what happens then (cancel, remind, escalate)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from automations.flow.original_gates import ORIGINAL_EXPIRY_PATHS
from automations.flow.problems import Report
from automations.flow.values import JSON, clean, in_range, mapping, reject_unknown_keys

ON_EXPIRY = ("cancel", "remind", "escalate")
# A gate waits at most a year: expiry times stay far from datetime's limits, and a forgotten
# gate still closes some day.
MAX_EXPIRES_AFTER_S = 31_536_000
MIN_REMIND_EVERY_S = 1

_EXPIRY_KEYS = frozenset({"expires_after_s", "on_expiry", "remind_every_s", "escalate_to"})
_USERNAME = re.compile(r"[\w.@+-]{1,150}")


def expiry_source(raw: Mapping[str, Any], path: str, original: bool) -> tuple[str, Any, str]:
    """(field path, value, unit): `expiry` in seconds, else the original's ms-based policies."""
    if raw.get("expiry") is not None or not original:
        return f"{path}.expiry", raw.get("expiry"), "s"
    for keys in ORIGINAL_EXPIRY_PATHS:
        value: Any = raw
        for key in keys:
            value = mapping(value).get(key)
        if value is not None:
            return ".".join((path, *keys)), value, "ms"
    return f"{path}.expiry", None, "s"


def parse_expiry(value: Any, path: str, unit: str, report: Report) -> JSON | None:
    """`{expires_after_s, on_expiry, remind_every_s, escalate_to}` in whole seconds, or None.

    `expires_after_s` None or 0 means the deployment default (FLOWGATE_GATE_DEFAULT_EXPIRY_S),
    else at most `MAX_EXPIRES_AFTER_S`; `remind_every_s` is at least 1 and at most the expiry
    (a reminder that can never fire is a mistake in the flow). The original's `*_ms` fields are
    converted, rounding up, before the bounds are checked.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        report(path, "must be an object")
        return None
    if unit == "s":
        reject_unknown_keys(value, _EXPIRY_KEYS, path, report)
    on_expiry = "cancel" if value.get("on_expiry") is None else clean(value["on_expiry"])
    if on_expiry not in ON_EXPIRY:
        report(
            f"{path}.on_expiry",
            f"must be one of cancel, remind, escalate, not {value['on_expiry']!r}",
        )
    expires = _seconds(
        value, f"expires_after_{unit}", path, unit, report, low=0, high=MAX_EXPIRES_AFTER_S
    )
    remind = _seconds(
        value,
        f"remind_every_{unit}",
        path,
        unit,
        report,
        low=MIN_REMIND_EVERY_S,
        high=expires or MAX_EXPIRES_AFTER_S,
    )
    if on_expiry == "remind" and value.get(f"remind_every_{unit}") is None:
        report(f"{path}.remind_every_{unit}", "is required when on_expiry is 'remind'")
    escalate_to = _usernames(value.get("escalate_to"), f"{path}.escalate_to", unit, report)
    if on_expiry == "escalate" and escalate_to == []:
        report(f"{path}.escalate_to", "needs at least one username when on_expiry is 'escalate'")
    return {
        "expires_after_s": expires,
        "on_expiry": on_expiry,
        "remind_every_s": remind,
        "escalate_to": escalate_to or [],
    }


def _seconds(
    value: Mapping[str, Any],
    key: str,
    path: str,
    unit: str,
    report: Report,
    *,
    low: int,
    high: int,
) -> int | float | None:
    """A duration in seconds from `low` to `high` (None when absent or reported); ms values are
    converted, rounding up, then checked in seconds."""
    amount = value.get(key)
    if amount is None:
        return None
    integer = key.startswith("expires_after") or unit == "ms"
    if in_range(amount, low=0, integer=integer):
        seconds = math.ceil(amount / 1000) if unit == "ms" else amount
        if low <= seconds <= high:
            return seconds
    kind = "an integer" if integer else "a number"
    if unit == "ms":
        bounds = f"from {1 if low else 0} to {high * 1000} milliseconds"
    else:
        bounds = f"from {low} to {high} seconds"
    report(f"{path}.{key}", f"must be {kind} {bounds}")
    return None


def _usernames(value: Any, path: str, unit: str, report: Report) -> list[str] | None:
    """Flowgate usernames to escalate to (existence is checked when escalating); None after a
    reported problem, so callers do not report the same field twice."""
    if value is None:
        return []
    if unit == "ms" and isinstance(value, str):  # the original allowed a single recipient
        value = [value]
    if not isinstance(value, list):
        report(path, "must be a list of usernames")
        return None
    names: list[str] = []
    for name in value:
        if not isinstance(name, str) or not _USERNAME.fullmatch(name.strip()):
            report(path, f"{name!r} is not a username")
            return None
        if name.strip() not in names:
            names.append(name.strip())
    return names
