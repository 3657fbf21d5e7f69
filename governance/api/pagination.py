"""Keyset pagination on (created_at, id) descending, shared by every list endpoint.

One convention on every list: `?limit=` and `?cursor=` in, `next_cursor` out (null on the
last page). A cursor is opaque to clients (here base64 of the last row's position). Keyset
pagination keeps deep pages as cheap as the first, which matters for the run list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.response import Response

from governance.errors import InvalidRequest


def encode_cursor(stamp: datetime, pk: int | str) -> str:
    raw = json.dumps([stamp.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Primary keys are bigints or short strings; anything else cannot be a row's position.
MAX_PK = 2**63 - 1
MAX_TEXT_PK = 200


def _valid_pk(pk) -> bool:
    if isinstance(pk, str):
        return 0 < len(pk) <= MAX_TEXT_PK
    return not isinstance(pk, bool) and isinstance(pk, int) and 0 < pk <= MAX_PK


def decode_cursor(cursor: str) -> tuple[datetime, int | str]:
    """The position a cursor names, or 400: a timezone-aware time and a positive bigint pk (or
    a short text pk).

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
    if not _valid_pk(pk):
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST")
    return created_at, pk


def keyset_page(
    queryset: QuerySet, *, limit: int, cursor: str | None, time_field: str = "created_at"
) -> tuple[list, str | None]:
    """One page of `queryset`, newest first by `time_field` then pk, and the cursor of the
    next page (None at the end)."""
    queryset = queryset.order_by(f"-{time_field}", "-pk")
    if cursor:
        stamp, pk = decode_cursor(cursor)
        pk_type = type(queryset.model._meta.pk.to_python(pk))
        if not isinstance(pk, pk_type):
            raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST")
        queryset = queryset.filter(
            Q(**{f"{time_field}__lt": stamp}) | Q(**{time_field: stamp, "pk__lt": pk})
        )
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(getattr(last, time_field), last.pk)


def list_json(key: str, items: list, next_cursor: str | None) -> dict[str, Any]:
    """The body of every list: `{key: items, "count": len(items), "next_cursor": next_cursor}`.

    One place for the shape (and its key order) that each list's schema serializer documents
    and clients page through."""
    return {key: items, "count": len(items), "next_cursor": next_cursor}


def page_response(
    queryset: QuerySet,
    query: Mapping[str, Any],
    *,
    key: str,
    render: Callable[[Any], Any],
    time_field: str = "created_at",
) -> Response:
    """One keyset page of `queryset` (`keyset_page`, by the parsed list query's `limit` and
    `cursor`), each row rendered by `render`, as the `list_json` body under `key`: what most
    list views answer once they have parsed their query and scoped their queryset. A list that
    renders its page in one batch (the run lists) calls `keyset_page` and `list_json` itself."""
    rows, next_cursor = keyset_page(
        queryset, limit=query["limit"], cursor=query.get("cursor"), time_field=time_field
    )
    return Response(list_json(key, [render(row) for row in rows], next_cursor))


def sequence_page(
    rows: list, *, position: Callable[[Any], list], limit: int, cursor: str | None
) -> tuple[list, str | None]:
    """One page of a short, already-read list in `position` order (a list of ints and
    strings per row), and the cursor of the next page: the same convention for lists that are
    not a single queryset (an automation's grants). Rows removed between pages are skipped,
    never repeated."""
    ordered = sorted(rows, key=position)
    if cursor:
        after = _decode_position(cursor)
        try:
            ordered = [row for row in ordered if position(row) > after]
        except TypeError as exc:
            raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST") from exc
    if len(ordered) <= limit:
        return ordered, None
    raw = json.dumps(position(ordered[limit - 1])).encode()
    return ordered[:limit], base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_position(cursor: str) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError, binascii.Error) as exc:
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST") from exc
    if not isinstance(position, list) or not all(
        isinstance(part, (int, str)) and not isinstance(part, bool) for part in position
    ):
        raise InvalidRequest("Invalid cursor", code="INVALID_REQUEST")
    return position


def cursor_field(**kwargs) -> serializers.CharField:
    """The `?cursor=` query parameter of a list."""
    return serializers.CharField(
        required=False, max_length=200, help_text="`next_cursor` of the previous page.", **kwargs
    )


def next_cursor_field() -> serializers.CharField:
    """The `next_cursor` of a list response."""
    return serializers.CharField(
        allow_null=True, help_text="Pass back as `cursor` for the next page; null on the last."
    )
