"""`Idempotency-Key`: a retried write returns the first response instead of acting twice.

A view wraps its work in `idempotent(request, respond)`. With the header, the first request
claims `(workspace, principal, key)` by inserting an `IdempotencyRecord` (a unique constraint,
so of two concurrent requests exactly one claims it), does the work and stores its successful
response; a retry with the same body gets that stored response, a retry with a different body
(or on another operation) 409 `IDEMPOTENCY_KEY_REUSED`. A retry arriving while the first is still
being answered waits for it (up to `WAIT_S`), then 409 `IDEMPOTENCY_REQUEST_IN_PROGRESS`. An error
response is not stored (the claim is released) so the client can fix and retry with the key.
Records older than `FLOWGATE_IDEMPOTENCY_RETENTION_S` no longer count, and beat deletes them
(`governance.forget_idempotency_records`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.response import Response

from governance.errors import Conflict, InvalidRequest
from governance.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
WAIT_S = 10.0
# A claim without a stored response after this long belongs to a request that died.
CLAIM_LEASE_S = 120.0
POLL_S = 0.05


def _digest(request) -> str:
    body = request.data if isinstance(request.data, dict) else {}
    text = json.dumps([request.method, request.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _cutoff():
    """Records created before this have outlived the retention window."""
    return timezone.now() - timedelta(seconds=settings.FLOWGATE_IDEMPOTENCY_RETENTION_S)


def _live(actor, key: str):
    return IdempotencyRecord.objects.filter(
        workspace=actor.workspace, principal=actor.actor_id, key=key, created_at__gte=_cutoff()
    )


def forget_expired() -> int:
    """Delete the records past the retention window; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=_cutoff()).delete()
    return deleted


def _claim(actor, key: str, digest: str) -> IdempotencyRecord | None:
    """Our new record, or None when a live one holds the key. An expired record, or a claim
    whose request never finished (its process died) within `CLAIM_LEASE_S`, is replaced."""
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    workspace=actor.workspace,
                    principal=actor.actor_id,
                    key=key,
                    request_digest=digest,
                )
        except IntegrityError:
            abandoned = timezone.now() - timedelta(seconds=CLAIM_LEASE_S)
            IdempotencyRecord.objects.filter(
                Q(created_at__lt=_cutoff()) | Q(status_code=None, created_at__lt=abandoned),
                workspace=actor.workspace,
                principal=actor.actor_id,
                key=key,
            ).delete()
            if _live(actor, key).exists():
                return None
    return None


def _replay(actor, key: str, digest: str) -> Response:
    deadline = time.monotonic() + WAIT_S
    while True:
        record = _live(actor, key).first()
        if record is not None and record.request_digest != digest:
            raise Conflict(
                "This Idempotency-Key was used with a different request",
                code="IDEMPOTENCY_KEY_REUSED",
            )
        if record is not None and record.status_code is not None:
            response = Response(record.response, status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        if time.monotonic() >= deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still being answered",
                code="IDEMPOTENCY_REQUEST_IN_PROGRESS",
            )
        time.sleep(POLL_S)


def idempotent(request, respond: Callable[[], Response]) -> Response:
    """`respond()`, or the stored first response of this request's `Idempotency-Key`."""
    key = request.headers.get(HEADER)
    if key is None:
        return respond()
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} characters",
            fields={HEADER: ["Invalid length."]},
        )
    actor, digest = request.actor, _digest(request)
    record = _claim(actor, key, digest)
    if record is None:
        return _replay(actor, key, digest)
    try:
        response = respond()
    except BaseException:
        record.delete()
        raise
    if 200 <= response.status_code < 300:
        record.status_code = response.status_code
        record.response = response.data
        record.save(update_fields=["status_code", "response"])
    else:
        record.delete()
    return response
