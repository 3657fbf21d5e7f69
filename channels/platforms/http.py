"""JSON over HTTP for the platforms without an official Python SDK here (Discord, Telegram)."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from channels.platforms import PlatformError


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    """Seconds to wait: the Retry-After header, else Discord's `retry_after` or Telegram's
    `parameters.retry_after` in the body."""
    header = response.headers.get("Retry-After")
    candidates = [header]
    if isinstance(body, dict):
        candidates += [body.get("retry_after"), (body.get("parameters") or {}).get("retry_after")]
    for value in candidates:
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return None


def call(
    method: str, url: str, *, json: dict[str, Any] | None = None, headers: dict[str, str]
) -> tuple[int, Any]:
    """Send one request; return (status, parsed JSON or None) for a 2xx, raise `PlatformError`
    for anything else (network errors count as retryable with status 0)."""
    try:
        response = httpx.request(
            method, url, json=json, headers=headers, timeout=settings.FLOWGATE_CHAT_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise PlatformError(f"{method} {_redacted(url)}: {exc}", retryable=True) from exc
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_success:
        return response.status_code, body
    raise PlatformError.from_status(
        f"{method} {_redacted(url)} answered {response.status_code}: {_description(body)}",
        response.status_code,
        _retry_after(response, body) if response.status_code == 429 else None,
    )


def _description(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("description") or body.get("message") or body)[:300]
    return "no JSON body"


def _redacted(url: str) -> str:
    """The URL without a Telegram bot token (`/bot<token>/method`), fit for logs and errors."""
    head, sep, tail = url.partition("/bot")
    if not sep:
        return url
    _, _, method = tail.partition("/")
    return f"{head}/bot<token>/{method}"
