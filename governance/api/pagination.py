"""Keyset pagination on (created_at, id) descending, shared by every list endpoint.

A cursor is opaque to clients (base64 of the last row's position). Keyset pagination keeps
deep pages as cheap as the first, which matters for the run list (SPEC §12).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from django.db.models import Q, QuerySet

from governance.errors import InvalidRequest


def encode_cursor(created_at: datetime, pk: int) -> str:
    raw = json.dumps([created_at.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Primary keys are bigints; anything outside cannot be a row's position.
MAX_PK = 2**63 - 1


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The position a cursor names, or 400: a timezone-aware time and a positive bigint pk.

    A client can send anything here, so every shape that would fail later (a naive time, a
    float or overflowing pk, deep JSON) is refused now.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None or created_at.utcoffset() is None:
            raise ValueError("naive datetime")
        created_at = created_at.astimezone(UTC)
    except (
        ValueError,  # also json.JSONDecodeError and UnicodeDecodeError
        TypeError,
        OverflowError,
        RecursionError,
        binascii.Error,
    ) as exc:
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST") from exc
    if isinstance(pk, bool) or not isinstance(pk, int) or not 0 < pk <= MAX_PK:
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST")
    return created_at, pk


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
