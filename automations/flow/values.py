"""Small value checks shared by every part of the spec."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from automations.flow.problems import Report

JSON = dict[str, Any]

MAX_ID_LENGTH = 128


def clean(value: Any) -> Any:
    """Trimmed and lowercased when a string; other values pass through for the type checks."""
    return value.strip().lower() if isinstance(value, str) else value


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def node_label(node_id: Any) -> str | None:
    """The id to name a node by in errors; None when it has no usable id."""
    return node_id if isinstance(node_id, str) and node_id else None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def in_range(
    value: Any, *, low: float, high: float = math.inf, integer: bool = False, open_low: bool = False
) -> bool:
    """Range check that refuses booleans (JSON `true` is an int in Python) and NaN/inf."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        return False
    above_low = low < value if open_low else low <= value
    return above_low and value <= high


def id_problem(value: Any) -> str | None:
    """Why `value` is not a usable node/agent id (ids appear in URLs, cards and logs)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if not value.isprintable() or any(char.isspace() for char in value):
        return "must not contain whitespace or control characters"
    return None


# Keys longer than this get no "did you mean" (the comparison is quadratic in the key length).
_SUGGEST_MAX_LENGTH = 64


def reject_unknown_keys(
    value: Mapping[str, Any], allowed: Collection[str], path: str, report: Report
) -> None:
    """Refuse keys outside `allowed`, naming the key and the nearest allowed one, so a typo such
    as `depend_on` or `expires_after` cannot silently fall back to a default (or drop a
    dependency). `path` is the object's field path, "" for the node itself."""
    expected = ", ".join(sorted(allowed))
    for key in sorted(set(value) - set(allowed), key=str):
        hint = did_you_mean(key, allowed)
        where = f"{path}.{key}" if path else str(key)
        report(where, f"unknown key{hint}; expected one of {expected}")


def did_you_mean(key: Any, allowed: Collection[str]) -> str:
    """` (did you mean 'depends_on'?)` for a near miss, else ""."""
    if not isinstance(key, str) or len(key) > _SUGGEST_MAX_LENGTH:
        return ""
    close = difflib.get_close_matches(key.strip().lower(), sorted(allowed), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def optional_string(value: Mapping[str, Any], key: str, path: str, report: Report) -> None:
    if value.get(key) is not None and not isinstance(value[key], str):
        report(f"{path}{key}", "must be a string")
