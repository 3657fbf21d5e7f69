"""Node kinds for engine tests, registered in workers via FLOWGATE_NODE_KINDS.

`sleep` waits `metadata.sleep_s` and reports when it ran (to observe parallelism and to have a
node still executing when a test pauses the run or kills the worker); `fail` always fails.
"""

from __future__ import annotations

import time

from automations.nodes.base import NodeContext, NodeFailure

KINDS = "sleep=tests.support.nodekinds.sleep,fail=tests.support.nodekinds.fail"
KINDS_SETTING = {"sleep": "tests.support.nodekinds.sleep", "fail": "tests.support.nodekinds.fail"}


def sleep(ctx: NodeContext) -> dict:
    started = time.time()
    time.sleep(float((ctx.node.get("metadata") or {}).get("sleep_s", 0.5)))
    return {
        "status": "completed",
        "summary": f"slept in attempt {ctx.attempt}",
        "content": {"started": started, "finished": time.time(), "attempt": ctx.attempt},
    }


def fail(ctx: NodeContext) -> dict:
    raise NodeFailure(f"{ctx.node_id} failed on attempt {ctx.attempt}", failure_kind="test_failure")
