"""Delivering approval cards: post when a gate opens (or is reminded/escalated), and bring every
card of a closed gate to its outcome with a thread reply.

Every card is one `ApprovalMessage` row, and `card_sync` is the one idempotent step that moves
a row towards what it should show now:

- gate open, not posted yet → post the open card (buttons), record `message_id`/`thread_id`;
- gate open and posted, a quorum gate whose approval count changed since the card was
  rendered → edit the open card (buttons kept) to show the progress (`gate_progress`);
- gate closed, posted → edit the card to the outcome (`rendered_outcome` records it), then post
  the thread reply (`reply_id` records it); each is skipped when already done, so running the
  step again changes nothing on the platform;
- gate closed before the card was posted → `skipped` (nobody needs a card for a closed gate).

After posting, the gate is read again: a decision that committed while the card was on its way
(and whose fan-out found the row not yet posted) is applied by this same call, so no card keeps
its buttons after its gate closed.

Retries: a retryable `PlatformError` (429, 5xx, network) raises `Deferred` with the platform's
Retry-After, else a doubling backoff (`FLOWGATE_CHAT_RETRY_BACKOFF_S`, capped by
`..._BACKOFF_MAX_S`); the Celery task retries with that countdown. After
`FLOWGATE_CHAT_MAX_RETRIES`, or on a final error (bad token, unknown channel), the row is
`failed` with `last_error`. Each row is its own task, so one failing card never holds up another.
A beat sweep re-sends cards whose task was lost (`cards_overdue`), so an update is retried until
it is delivered or fails for good, and posts the cards of open gates that have no row at all
because the task that would have created them was lost (`cards_missing`).

Concurrency: a row is *claimed* (`claimed_until`, a lease a little longer than the platform
calls can take) with a conditional UPDATE before any platform call, and re-read after claiming,
so two workers never post or reply twice at once; no database lock is held during HTTP calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from approvals.models import Gate, GateStatus
from channels.cards import RENDERERS, card_facts, gate_outcome, progress_key
from channels.models import ApprovalMessage, ChannelConnection, MessageState
from channels.platforms import PlatformError, module_for

logger = logging.getLogger(__name__)

CARD = "card"
ESCALATION = "escalation"
DONE_STATES = (MessageState.FAILED, MessageState.SKIPPED)
OVERDUE_BATCH = 500
# How long after a gate opened its `post_cards` task may still be on its way; older gates
# without a card on an active connection get one from the sweep (`cards_missing`).
MISSING_GRACE_S = 60


class Deferred(Exception):
    """Try this card again in `countdown` seconds (rate limited, platform down, row busy)."""

    def __init__(self, countdown: float, why: str) -> None:
        super().__init__(why)
        self.countdown = countdown


def reminder_purpose(count: int) -> str:
    return f"reminder:{count}"


def lease_seconds() -> float:
    """How long a claim on a row lasts: longer than the (at most three) platform calls of one
    sync, so a live worker never loses it; a crashed worker's claim lapses by itself."""
    return 3 * settings.FLOWGATE_CHAT_TIMEOUT_S + 5


def backoff(attempt: int) -> float:
    base = settings.FLOWGATE_CHAT_RETRY_BACKOFF_S
    return min(settings.FLOWGATE_CHAT_RETRY_BACKOFF_MAX_S, base * 2**attempt)


def gate_has_connections(gate_id: str) -> bool:
    """Whether the gate's workspace has an active chat connection (cards to post or update)."""
    return ChannelConnection.objects.filter(is_active=True, workspace__gates__pk=gate_id).exists()


def cards_prepare(*, gate_id: str, purpose: str) -> list[int]:
    """Rows for `purpose`'s card on every active connection of the gate's workspace (existing
    rows are kept); returns the ids of those not posted yet. Nothing while the gate is closed."""
    gate = Gate.objects.filter(pk=gate_id, status=GateStatus.OPEN).first()
    if gate is None:
        return []
    return _prepare({gate.pk: gate.workspace_id}, purpose)


def cards_missing(*, now) -> list[int]:
    """Ids of the open cards of gates whose `post_cards` task was lost: open gates, opened more
    than `MISSING_GRACE_S` ago, with an active connection in their workspace that has no card
    row for them (the broker was down when the gate opened, or the connection was added later).
    Their rows are created here, at most `OVERDUE_BATCH` gates a sweep, oldest first; rows that
    exist are kept, so this is as idempotent as `cards_prepare`."""
    no_card = ChannelConnection.objects.filter(
        workspace_id=OuterRef("workspace_id"), is_active=True
    ).filter(
        ~Exists(
            ApprovalMessage.objects.filter(
                gate_id=OuterRef(OuterRef("pk")), connection_id=OuterRef("pk"), purpose=CARD
            )
        )
    )
    gates = (
        Gate.objects.filter(
            status=GateStatus.OPEN, requested_at__lt=now - timedelta(seconds=MISSING_GRACE_S)
        )
        .filter(Exists(no_card))
        .order_by("requested_at", "pk")
        .values_list("pk", "workspace_id")[:OVERDUE_BATCH]
    )
    return _prepare(dict(gates), CARD)


def _prepare(workspace_of: dict[str, int], purpose: str) -> list[int]:
    """Create the missing rows of `purpose` for the gates (gate id → workspace id) on every
    active connection of their workspaces; the ids of their rows not posted yet."""
    if not workspace_of:
        return []
    connections = ChannelConnection.objects.filter(
        workspace_id__in=set(workspace_of.values()), is_active=True
    )
    by_workspace: dict[int, list[ChannelConnection]] = {}
    for connection in connections:
        by_workspace.setdefault(connection.workspace_id, []).append(connection)
    ApprovalMessage.objects.bulk_create(
        [
            ApprovalMessage(gate_id=gate_id, connection=c, purpose=purpose, recipient=c.channel_id)
            for gate_id, workspace_id in workspace_of.items()
            for c in by_workspace.get(workspace_id, [])
        ],
        ignore_conflicts=True,  # one row per (gate, connection, purpose): re-runs add nothing
    )
    return list(
        ApprovalMessage.objects.filter(
            gate_id__in=workspace_of, purpose=purpose, state=MessageState.PENDING, message_id=""
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def cards_to_sync(*, gate_id: str) -> list[int]:
    """Ids of the gate's cards that may still need work (not failed or skipped, not done)."""
    return list(
        ApprovalMessage.objects.filter(gate_id=gate_id)
        .exclude(state__in=DONE_STATES)
        .exclude(state=MessageState.UPDATED, reply_id__gt="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def cards_overdue(*, now) -> list[int]:
    """Ids of cards whose task was lost: not posted yet, or of a closed gate and still showing
    buttons or lacking their reply, and untouched for longer than any retry waits (the broker
    was down when the gate closed, a worker died). The oldest `OVERDUE_BATCH` first; the beat
    sweep sends them to `card_sync` again, which is safe because it is idempotent."""
    quiet = now - timedelta(seconds=settings.FLOWGATE_CHAT_RETRY_BACKOFF_MAX_S + lease_seconds())
    closed_and_stale = ~Q(gate__status=GateStatus.OPEN) & (
        Q(state=MessageState.POSTED) | Q(state=MessageState.UPDATED, reply_id="")
    )
    return list(
        ApprovalMessage.objects.filter(updated_at__lt=quiet, connection__is_active=True)
        .filter(Q(state=MessageState.PENDING, message_id="") | closed_and_stale)
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)[:OVERDUE_BATCH]
    )


def card_sync(*, message_pk: int, attempt: int = 0) -> None:
    """Bring one card to what its gate says now (see the module docstring). Raises `Deferred`
    when it should be tried again later; records final failures on the row."""
    if not _claim(message_pk):
        if attempt >= settings.FLOWGATE_CHAT_MAX_RETRIES:
            return  # the worker holding the claim is doing this work
        raise Deferred(lease_seconds(), "card busy in another worker")
    message = None
    try:
        message = (
            ApprovalMessage.objects.select_related(
                "connection",
                "gate__run__automation",
                "gate__workspace__organization",
            )
            .filter(pk=message_pk)
            .first()
        )
        if message is None or message.state in DONE_STATES or not message.connection.is_active:
            return
        _sync(message, attempt)
    except _Failed:
        return
    finally:
        ApprovalMessage.objects.filter(pk=message_pk).update(claimed_until=None)


def _claim(message_pk: int) -> bool:
    now = timezone.now()
    return bool(
        ApprovalMessage.objects.filter(pk=message_pk)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=lease_seconds()))
    )


def _sync(message: ApprovalMessage, attempt: int) -> None:
    gate, connection = message.gate, message.connection
    platform, render = module_for(connection.kind), RENDERERS[connection.kind]
    outcome = gate_outcome(gate)
    if not message.message_id:
        if outcome is not None:
            _save(message, state=MessageState.SKIPPED)
            return
        facts = card_facts(gate, purpose=message.purpose)
        with _platform_call(message, attempt, "post"):
            posted = platform.post_message(connection, render.open(facts))
        _save(
            message,
            message_id=posted.message_id,
            thread_id=posted.thread_id,
            state=MessageState.POSTED,
            rendered_outcome=progress_key(gate),  # the progress the posted card shows
        )
        gate.refresh_from_db(fields=["status", "closed_at", "quorum"])
        outcome = gate_outcome(gate)
    if outcome is None:
        _show_progress(message, attempt)
        return
    facts = card_facts(gate, purpose=message.purpose)
    if message.rendered_outcome != outcome.key:
        with _platform_call(message, attempt, "update"):
            platform.edit_message(connection, message.message_id, render.closed(facts, outcome))
        _save(message, rendered_outcome=outcome.key, state=MessageState.UPDATED)
    if not message.reply_id:
        with _platform_call(message, attempt, "reply"):
            reply = platform.post_message(
                connection, render.reply(facts, outcome), thread_id=message.thread_id
            )
        _save(message, reply_id=reply.message_id)


def _show_progress(message: ApprovalMessage, attempt: int) -> None:
    """An open card of a quorum gate shows the approvals so far: edited (buttons kept) when the
    count changed since it was last rendered (`rendered_outcome` holds `progress:<count>`)."""
    gate = message.gate
    key = progress_key(gate)
    if not key or message.rendered_outcome == key:
        return
    connection, render = message.connection, RENDERERS[message.connection.kind]
    facts = card_facts(gate, purpose=message.purpose)
    with _platform_call(message, attempt, "progress"):
        module_for(connection.kind).edit_message(connection, message.message_id, render.open(facts))
    _save(message, rendered_outcome=key)


class _Failed(Exception):
    """A card failed for good (recorded on its row); its remaining steps are skipped."""


@contextmanager
def _platform_call(message: ApprovalMessage, attempt: int, what: str) -> Iterator[None]:
    """Count the attempt; turn a `PlatformError` into `Deferred` (retryable, retries left) or a
    `failed` row (logged, then `_Failed`)."""
    message.attempts += 1
    try:
        yield
    except PlatformError as exc:
        error = f"{what}: {exc}"[:2000]
        if exc.retryable and attempt < settings.FLOWGATE_CHAT_MAX_RETRIES:
            _save(message, last_error=error)
            countdown = exc.retry_after if exc.retry_after is not None else backoff(attempt)
            raise Deferred(countdown, error) from exc
        _save(message, state=MessageState.FAILED, last_error=error)
        logger.warning(
            "chat card failed for good message=%s gate=%s connection=%s: %s",
            message.pk,
            message.gate_id,
            message.connection_id,
            error,
        )
        raise _Failed(error) from exc


def _save(message: ApprovalMessage, **fields) -> None:
    for name, value in fields.items():
        setattr(message, name, value)
    message.save(update_fields=[*fields, "attempts", "updated_at"])
