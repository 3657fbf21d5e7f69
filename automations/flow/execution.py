"""The execution policy of an automation (how many nodes may run at once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.flow.problems import Problems
from automations.flow.values import JSON, in_range

MAX_PARALLEL = 16


def normalise_execution(execution: Any, problems: Problems) -> JSON:
    """Execution policy with `max_parallel` defaulted to 1; other keys kept as given."""
    if execution is None:
        return {"max_parallel": 1}
    if not isinstance(execution, Mapping):
        problems.add(None, "execution", "must be an object")
        return {"max_parallel": 1}
    max_parallel = 1 if execution.get("max_parallel") is None else execution["max_parallel"]
    if not in_range(max_parallel, low=1, high=MAX_PARALLEL, integer=True):
        problems.add(None, "execution.max_parallel", f"must be an integer from 1 to {MAX_PARALLEL}")
    return {**execution, "max_parallel": max_parallel}
