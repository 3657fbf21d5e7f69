"""The audit chain: one writer, one HMAC hash chain per workspace, verification.

Invariants (see SPEC §7):
- `audit_record` runs inside the caller's transaction, so an event commits with its change or
  not at all. It refuses to run outside a transaction.
- Appending locks the workspace's `AuditChainHead` row FOR UPDATE, reads seq/hash from it and
  advances it: O(1) per event, and concurrent writers serialise on that one row, so seq is
  contiguous with no fork. `(workspace, seq)` is also unique in the database.
- Lock order: callers lock their own rows (run, then gate) before calling this; the chain head
  is always the last lock taken.
- `hash = HMAC-SHA256(key, canonical_json(event))` where the canonical event holds the type,
  tenant, actor, payload, time, seq and prev_hash. The key id is stored so keys can rotate:
  the first key of `AUDIT_HMAC_KEYS` signs, every listed key verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from governance.actors import Actor
from governance.audit_keys import parse_audit_keys
from governance.models import AuditChainHead, AuditEvent, Workspace

GENESIS_HASH = "0" * 64


class AuditOutsideTransaction(RuntimeError):
    """Raised when the writer is called without an open transaction to join."""


@cache
def _parse_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    return parse_audit_keys(raw)


def signing_keys() -> tuple[tuple[str, bytes], ...]:
    return _parse_keys(settings.AUDIT_HMAC_KEYS)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _jsonb_float(text: str) -> float | int:
    """A JSON float as PostgreSQL's jsonb reads it back: jsonb keeps exact numerics, so an
    exponent form (Python writes floats from 1e16 up as e.g. `1e+16`) comes back as the integer
    it denotes, and -0.0 as 0.0. Hashing the value jsonb will return keeps such events verifiable.
    """
    if "e+" in text:
        return int(Decimal(text))
    return float(text) or 0.0


def _normalise(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload exactly as it will read back from the JSON column (dates become strings)."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder), parse_float=_jsonb_float)


def _canonical_event(
    *,
    workspace_id: int,
    event_type: str,
    actor_kind: str,
    actor_id: str,
    payload: dict[str, Any],
    created_at,
    seq: int,
    prev_hash: str,
) -> str:
    return canonical_json(
        {
            "type": event_type,
            "tenant": workspace_id,
            "actor": {"kind": actor_kind, "id": actor_id},
            "payload": payload,
            "at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "seq": seq,
            "prev_hash": prev_hash,
        }
    )


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


_BUMP_HEAD = (
    "UPDATE governance_auditchainhead SET seq = seq + 1, updated_at = %s "
    "WHERE workspace_id = %s RETURNING seq, hash"
)
_INSERT_EVENT = (
    "INSERT INTO governance_auditevent (workspace_id, seq, event_type, actor_kind, actor_id, "
    "payload, created_at, prev_hash, hash, key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "RETURNING id"
)
_SET_HEAD_HASH = "UPDATE governance_auditchainhead SET hash = %s WHERE workspace_id = %s"
# PostgreSQL does both in one round trip, shortening the time the head stays locked.
_INSERT_EVENT_AND_SET_HEAD = (
    f"WITH event AS ({_INSERT_EVENT}), "
    "head AS (UPDATE governance_auditchainhead SET hash = %s WHERE workspace_id = %s) "
    "SELECT id FROM event"
)


def _bump_head(cursor, workspace: Workspace, now) -> tuple[int, str]:
    """Lock the chain head and advance its seq in one statement; create it on first use.

    The UPDATE takes the row lock, so concurrent appenders queue here and each sees the seq and
    hash its predecessor committed.
    """
    cursor.execute(_BUMP_HEAD, [now, workspace.pk])
    row = cursor.fetchone()
    if row is None:
        # First event of this workspace: only one INSERT wins; the others then wait on the lock.
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(workspace=workspace, hash=GENESIS_HASH)], ignore_conflicts=True
        )
        cursor.execute(_BUMP_HEAD, [now, workspace.pk])
        row = cursor.fetchone()
    return row[0], row[1] or GENESIS_HASH


def audit_record(
    *, workspace: Workspace, event_type: str, actor: Actor, payload: dict[str, Any]
) -> AuditEvent:
    """Append one event to the workspace's chain, inside the caller's transaction.

    The head lock is held from the first statement until the caller commits, so the work done
    under it is kept to three statements and one HMAC; everything else is prepared beforehand.
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction("audit_record must run inside the transaction of its change")
    key_id, key = signing_keys()[0]
    payload = _normalise(payload)
    stored_payload = AuditEvent._meta.get_field("payload").get_db_prep_value(
        payload, connection, prepared=False
    )
    with connection.cursor() as cursor:
        created_at = timezone.now()
        seq, prev_hash = _bump_head(cursor, workspace, created_at)
        message = _canonical_event(
            workspace_id=workspace.pk,
            event_type=event_type,
            actor_kind=actor.kind,
            actor_id=actor.actor_id,
            payload=payload,
            created_at=created_at,
            seq=seq,
            prev_hash=prev_hash,
        )
        digest = _mac(key, message)
        row = [
            workspace.pk,
            seq,
            event_type,
            actor.kind,
            actor.actor_id,
            stored_payload,
            created_at,
            prev_hash,
            digest,
            key_id,
        ]
        if connection.vendor == "postgresql":
            cursor.execute(_INSERT_EVENT_AND_SET_HEAD, [*row, digest, workspace.pk])
            event_id = cursor.fetchone()[0]
        else:
            cursor.execute(_INSERT_EVENT, row)
            event_id = cursor.fetchone()[0]
            cursor.execute(_SET_HEAD_HASH, [digest, workspace.pk])
    return AuditEvent(
        pk=event_id,
        workspace=workspace,
        seq=seq,
        event_type=event_type,
        actor_kind=actor.kind,
        actor_id=actor.actor_id,
        payload=payload,
        created_at=created_at,
        prev_hash=prev_hash,
        hash=digest,
        key_id=key_id,
    )


def audit_record_committed(**kwargs: Any) -> AuditEvent:
    """Record an event in a transaction of its own (denials: kept although the request fails).

    Callers must not be inside a transaction that will roll back, or the event goes with it.
    """
    with transaction.atomic():
        return audit_record(**kwargs)


@dataclass
class ChainBreak:
    seq: int
    event_id: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "event_id": self.event_id, "reason": self.reason}


@dataclass
class VerifyResult:
    workspace: str
    events: int = 0
    head: dict[str, Any] = field(default_factory=dict)
    first_break: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": self.ok,
            "workspace": self.workspace,
            "events": self.events,
            "head": self.head,
        }
        if self.first_break is not None:
            body["first_break"] = self.first_break.as_dict()
        return body


def verify_chain(workspace: Workspace, *, batch_size: int = 5000) -> VerifyResult:
    """Walk the workspace's chain in seq order and report the first broken link.

    Detects edited fields (MAC mismatch), deleted or reordered events (seq gap or prev_hash
    mismatch) and a truncated tail (head row ahead of the last event) or a head row moved back.
    Safe while events are being appended: see the tail check below.
    """
    keys = dict(signing_keys())
    result = VerifyResult(workspace=workspace.path)
    head = AuditChainHead.objects.filter(workspace=workspace).first()
    expected_seq, expected_prev = 1, GENESIS_HASH
    rows = (
        AuditEvent.objects.filter(workspace=workspace)
        .order_by("seq")
        .values_list(
            "id",
            "seq",
            "event_type",
            "actor_kind",
            "actor_id",
            "payload",
            "created_at",
            "prev_hash",
            "hash",
            "key_id",
        )
    )
    for row in rows.iterator(chunk_size=batch_size):
        pk, seq, event_type, actor_kind, actor_id, payload, created_at, prev, digest, key_id = row
        result.events += 1
        problem = None
        if seq != expected_seq:
            problem = f"expected seq {expected_seq}, found {seq} (event missing or reordered)"
        elif prev != expected_prev:
            problem = "prev_hash does not match the previous event's hash"
        elif key_id not in keys:
            problem = f"unknown key id {key_id!r}"
        else:
            message = _canonical_event(
                workspace_id=workspace.pk,
                event_type=event_type,
                actor_kind=actor_kind,
                actor_id=actor_id,
                payload=payload,
                created_at=created_at,
                seq=seq,
                prev_hash=prev,
            )
            if not hmac.compare_digest(_mac(keys[key_id], message), digest):
                problem = "hash does not match the event's contents (edited)"
        if problem:
            result.first_break = ChainBreak(seq=expected_seq, event_id=pk, reason=problem)
            return result
        expected_seq, expected_prev = seq + 1, digest
    last_seq = expected_seq - 1
    result.head = {"seq": last_seq, "hash": expected_prev if last_seq else None}
    if head is not None and head.seq < last_seq:
        # The head was read before the events, so events past it are appends committed during
        # the walk (the head has caught up since) or a head row moved back: read it again.
        head = AuditChainHead.objects.get(pk=head.pk)
        if head.seq > last_seq:
            return result  # still being appended to; everything walked verified
    if head is None:
        return result
    if head.seq > last_seq:
        reason = "(events missing from the tail)"
    elif head.seq < last_seq:
        reason = "(the head row was moved back)"
    elif last_seq and head.hash != expected_prev:
        reason = "but the head's hash is not that event's hash"
    else:
        return result
    result.first_break = ChainBreak(
        seq=min(head.seq, last_seq) + 1,
        event_id=None,
        reason=f"chain head is at seq {head.seq} and the last event is seq {last_seq} {reason}",
    )
    return result
