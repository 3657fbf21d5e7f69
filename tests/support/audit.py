"""Changing audit rows behind the append-only trigger, as someone with raw database access."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def tampering():
    """Let the block change audit rows the way someone with raw database access could.

    `session_replication_role = replica` skips ordinary triggers (the append-only one) for
    this transaction only; it is put back so the rest of the test runs with the trigger on.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield
        cursor.execute("SET LOCAL session_replication_role = origin")
