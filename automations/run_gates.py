"""How the run JSON, run lists and the admin's run page read a run's gates and decisions,
which belong to a higher app: that app registers a `GateReader` in its `AppConfig.ready()`
(`approvals` does, `approvals.selectors.ApprovalGateReader`); this app never imports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Prefetch


class GateReader(Protocol):
    """Read-only access to the gates of runs, in a fixed number of queries."""

    def run_prefetches(self) -> list[Prefetch]:
        """Prefetches for a run queryset: the open gates as `open` (a list) and the decisions
        as `gate_decisions` (with `decided_by`, `on_behalf_of` and `gate`, oldest first)."""
        ...

    def history(self, run: Any) -> list[Any]:
        """Every opening of the run's gates, oldest first, with `decision_records` prefetched."""
        ...

    def open_gates(self, run_pks: list[int]) -> Iterable[Any]:
        """The open gates of these runs (rows with `run_id`)."""
        ...

    def decision_rows(self, run_pks: list[int]) -> Iterable[Any]:
        """The decisions of these runs as named rows, oldest first: `run_id`, `node_id`,
        `gate_id`, `decision`, `reason`, `decided_at`, `decider_kind`, `source`,
        `reviewed_digest`, `round`, `decider` (username), `delegator` (the `on_behalf_of`
        username or None), `settles`."""
        ...


_readers: list[GateReader] = []


def register_gate_reader(reader: GateReader) -> None:
    _readers[:] = [reader]


def gate_reader() -> GateReader:
    if not _readers:
        raise ImproperlyConfigured("no gate reader registered (is the approvals app installed?)")
    return _readers[0]
