"""Keyset pagination on (created_at, id) descending, shared by every list endpoint.

A cursor is opaque to clients (base64 of the last row's position). Keyset pagination keeps
deep pages as cheap as the first, which matters for the run list (SPEC §12).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q, QuerySet

from governance.errors import InvalidRequest


def encode_cursor(created_at: datetime, pk: int) -> str:
    raw = json.dumps([created_at.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST") from exc


def keyset_page(queryset: QuerySet, *, limit: int, cursor: str | None) -> tuple[list, str | None]:
    """One page of `queryset`, newest first, and the cursor of the next page (None at the end)."""
    queryset = queryset.order_by("-created_at", "-id")
    if cursor:
        stamp, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, id__lt=pk))
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.pk)
