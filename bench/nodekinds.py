"""Node kinds of the benchmarks, registered through FLOWGATE_NODE_KINDS (`kind=dotted.path`).

`wait` stands for a node that waits on a model or an HTTP call: it sleeps `metadata.sleep_s`
and completes.
"""

from __future__ import annotations

import time

from automations.nodes.base import NodeContext


def wait(ctx: NodeContext) -> dict:
    time.sleep(float((ctx.node.get("metadata") or {}).get("sleep_s", 0.2)))
    return {"status": "completed", "summary": f"waited in attempt {ctx.attempt}"}
