"""Warnings about a saved automation that do not make it invalid (the API's `warnings` list and
the admin page).

Higher apps know things this one may not import (who can decide a gate is `approvals`' to
say), so they register checks here from their `AppConfig.ready()`; a check takes the saved
automation and returns `{code, node_id, message}` dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automations.models import Automation

Check = Callable[[Automation], list[dict[str, Any]]]
_CHECKS: list[Check] = []


def register(check: Check) -> None:
    """Add a check (idempotent, so a repeated `ready()` does not run it twice)."""
    if check not in _CHECKS:
        _CHECKS.append(check)


def automation_warnings(automation: Automation) -> list[dict[str, Any]]:
    """Every registered check's warnings about `automation`, in registration order."""
    return [warning for check in _CHECKS for warning in check(automation)]
