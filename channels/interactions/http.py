"""Answers and payload helpers shared by the three interaction endpoints.

Only a request that cannot be verified gets an HTTP error (401), and nothing is written for it.
Everything after verification, malformed or not, is a 200 in the platform's own answer format
with words for the user, so a platform never retries a delivery we already looked at.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.http import JsonResponse

logger = logging.getLogger("channels.interactions")

# Slack and Discord both refuse requests older than this (Slack's verifier has it built in).
MAX_AGE_S = 5 * 60
# A signed request's timestamp header: ASCII digits, short enough for int() and for now. Not
# `str.isdigit()`, which also accepts "²" and other Unicode digits that int() then refuses.
TIMESTAMP = re.compile(r"[0-9]{1,12}")


def plausible_timestamp(value: str) -> bool:
    """Whether a signed request's timestamp header is worth verifying (else: 401, unverified)."""
    return TIMESTAMP.fullmatch(value) is not None


def unverified() -> JsonResponse:
    return JsonResponse(
        {"error": "Request signature could not be verified", "code": "INVALID_SIGNATURE"},
        status=401,
    )


def ignored(detail: str) -> JsonResponse:
    """A verified request that decides nothing: 200 saying why, so the platform does not deliver
    it again (Telegram redelivers anything else) and whoever reads the log knows."""
    return JsonResponse({"ok": True, "ignored": detail})


def json_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None for anything else (invalid JSON, a list, a number).

    NUL characters in its strings become U+FFFD: PostgreSQL refuses NUL in text and JSON, and
    a payload's ids, names and reasons end up in queries, receipts and audit events (a
    replacement, not a removal, so an id with a NUL never turns into another valid id)."""
    try:
        value = _without_nul(json.loads(raw))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def dig(value: Any, *path: str, default: Any = "") -> Any:
    """`value[a][b]…`, or `default` where the payload lacks a level (payloads vary by context)."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def listed(value: Any) -> list[Any]:
    """`value` when the payload has a list there, else nothing to iterate (a string, number or
    object where a platform sends a list is malformed, not a reason to fail)."""
    return value if isinstance(value, list) else []
