"""The shapes of the ids clients put in URLs: automation ids and run ids.

Selectors check a path id against its pattern before querying, so an id no row could have (a NUL,
a newline, 10 kB of text) is answered as "not found" without reaching the database.
"""

from __future__ import annotations

import re

# Always used with `fullmatch` (`$` would accept a trailing newline).
AUTOMATION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Path segments under /api/automations/v2 that are routes, not automation ids.
# The automation whose runs back agents' approval requests (`approvals.requests`): one per
# workspace, made on demand, never created through the API.
APPROVAL_REQUESTS_AUTOMATION_ID = "flowgate:approval-requests"
RESERVED_IDS = frozenset({"runs", APPROVAL_REQUESTS_AUTOMATION_ID})
# `run-<hex>` today (automations.services.run_start); the column holds 64 characters.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def is_automation_id(value: str) -> bool:
    return AUTOMATION_ID_PATTERN.fullmatch(value) is not None


def is_run_id(value: str) -> bool:
    return RUN_ID_PATTERN.fullmatch(value) is not None
