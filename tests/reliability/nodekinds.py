"""A node kind for fault injection, registered in workers via FLOWGATE_NODE_KINDS.

`held` hangs while the file named by `metadata.hold_file` exists (at most two minutes), so a
test can SIGKILL the worker while the node is executing, remove the file, and let the next
attempt complete at once. Its output records the attempt that produced it.
"""

from __future__ import annotations

import time
from pathlib import Path

from automations.nodes.base import NodeContext

KINDS = "held=tests.reliability.nodekinds.held"
KINDS_SETTING = {"held": "tests.reliability.nodekinds.held"}


def held(ctx: NodeContext) -> dict:
    hold = Path((ctx.node.get("metadata") or {})["hold_file"])
    deadline = time.monotonic() + 120
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        "status": "completed",
        "summary": f"done in attempt {ctx.attempt}",
        "content": {"attempt": ctx.attempt},
    }
