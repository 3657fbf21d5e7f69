"""Answers shared by the three interaction endpoints, and the guard around platform calls.

Only a request that cannot be verified (or parsed) gets an HTTP error, and nothing is written
for it. Everything after verification is a 200 in the platform's own answer format, so a
platform never retries a click we already understood.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import JsonResponse

from channels.platforms import PlatformError

logger = logging.getLogger("channels.interactions")

# Slack and Discord both refuse requests older than this (Slack's verifier has it built in).
MAX_AGE_S = 5 * 60


def unverified() -> JsonResponse:
    return JsonResponse(
        {"error": "Request signature could not be verified", "code": "INVALID_SIGNATURE"},
        status=401,
    )


def malformed(detail: str) -> JsonResponse:
    return JsonResponse(
        {"error": f"Malformed interaction: {detail}", "code": "INVALID_REQUEST"}, status=400
    )


def json_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None for anything else (invalid JSON, a list, a number)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def dig(value: Any, *path: str, default: Any = "") -> Any:
    """`value[a][b]…`, or `default` where the payload lacks a level (payloads vary by context)."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def tell(call: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Make a platform call that tells the user something; a failure is logged and reported as
    False, never raised (the decision has committed, and the platform must still get its 200)."""
    try:
        call(*args, **kwargs)
    except PlatformError:
        logger.warning("chat reply failed: %s", getattr(call, "__name__", call), exc_info=True)
        return False
    return True
