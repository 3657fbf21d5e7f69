"""Problem collection: every problem of a spec is gathered, then raised as one `InvalidFlow`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from governance.errors import InvalidFlow

# Reports one problem of the thing being checked: (field, message).
Report = Callable[[str, str], None]


@dataclass
class Problems:
    """Every problem found, so one 400 lists them all instead of one per round trip."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, node_id: str | None, field_name: str, message: str) -> None:
        self.errors.append({"node_id": node_id, "field": field_name, "message": message})

    def reporter(self, node_id: str | None) -> Report:
        return lambda field_name, message: self.add(node_id, field_name, message)

    def raise_if_any(self) -> None:
        if self.errors:
            nodes = sorted({error["node_id"] for error in self.errors if error["node_id"]})
            raise InvalidFlow(_summary(self.errors), nodes=nodes, errors=self.errors)


def _summary(errors: list[dict[str, Any]]) -> str:
    def describe(error: dict[str, Any]) -> str:
        where = f"node {error['node_id']!r} " if error["node_id"] else ""
        return f"{where}{error['field']}: {error['message']}"

    shown = "; ".join(describe(error) for error in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"Invalid automation flow: {shown}{more}"
