"""Problem collection: every problem of a spec is gathered, then raised as one `InvalidFlow`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from governance.errors import InvalidFlow

# Reports one problem of the thing being checked: (field, message).
Report = Callable[[str, str], None]
# Problems listed in one 400; the rest are counted (a hostile flow can have millions).
MAX_LISTED = 200


@dataclass
class Problems:
    """Every problem found, so one 400 lists them all instead of one per round trip."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    unlisted: int = 0

    def add(self, node_id: str | None, field_name: str, message: str) -> None:
        if len(self.errors) >= MAX_LISTED:
            self.unlisted += 1
            return
        self.errors.append({"node_id": node_id, "field": field_name, "message": message})

    def reporter(self, node_id: str | None) -> Report:
        return lambda field_name, message: self.add(node_id, field_name, message)

    def raise_if_any(self) -> None:
        if self.errors:
            nodes = sorted({error["node_id"] for error in self.errors if error["node_id"]})
            raise InvalidFlow(_summary(self.errors, self.unlisted), nodes=nodes, errors=self.errors)


def _summary(errors: list[dict[str, Any]], unlisted: int = 0) -> str:
    def describe(error: dict[str, Any]) -> str:
        where = f"node {error['node_id']!r} " if error["node_id"] else ""
        return f"{where}{error['field']}: {error['message']}"

    shown = "; ".join(describe(error) for error in errors[:3])
    hidden = len(errors) - 3 + unlisted
    more = f" (and {hidden} more)" if hidden > 0 else ""
    return f"Invalid automation flow: {shown}{more}"
