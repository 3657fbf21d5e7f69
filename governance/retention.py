"""Deleting rows past their retention in bounded batches, for the beat tasks that keep tables
from growing forever (the workspace events here, the webhook deliveries in `channels`).

One batch is one short transaction: lock at most `FLOWGATE_RETENTION_BATCH_SIZE` of the oldest
candidates with `FOR UPDATE SKIP LOCKED` (a row another transaction holds, e.g. a delivery
being redelivered or an event a new delivery is being inserted for, waits for the next run),
then delete exactly those. A run stops when a batch comes back short or after `max_batches`,
so one beat run never holds a huge transaction nor runs for ever on a large backlog; the next
run goes on where it stopped. The queries of a run depend on its number of batches, never on
its number of rows.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

# Batches of one run at most: with the default batch size, 100,000 rows per table and run.
MAX_BATCHES = 100


def forget_in_batches(
    candidates: QuerySet,
    forget: Callable[[list[int]], object],
    *,
    batch_size: int | None = None,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Call `forget(pks)` with the primary keys of the oldest `candidates` (by `created_at`),
    a batch at a time, each batch locked and forgotten in one transaction; returns how many
    rows were handed to `forget`. `candidates` must select only rows that may go."""
    size = batch_size or settings.FLOWGATE_RETENTION_BATCH_SIZE
    batch = candidates.select_for_update(skip_locked=True, of=("self",)).order_by("created_at")
    forgotten = 0
    for _ in range(max_batches):
        with transaction.atomic():
            pks = list(batch.values_list("pk", flat=True)[:size])
            if pks:
                forget(pks)
        forgotten += len(pks)
        if len(pks) < size:
            break
    return forgotten
