"""Node kinds for engine and fault-injection tests, registered in workers via
FLOWGATE_NODE_KINDS (`WORKER_ENV`) and in the test process via `KINDS_SETTING`.

`sleep` waits `metadata.sleep_s` and reports when it ran (to observe parallelism and to have a
node still executing when a test pauses the run or kills the worker); `fail` always fails;
`held` hangs while the file named by `metadata.hold_file` exists (at most two minutes), so a
test can SIGKILL the worker while the node is executing, remove the file, and let the next
attempt complete at once. Its output records the attempt that produced it.
"""

from __future__ import annotations

import time
from pathlib import Path

from automations.nodes.base import NodeContext, NodeFailure

KINDS_SETTING = {
    "sleep": "tests.support.nodekinds.sleep",
    "fail": "tests.support.nodekinds.fail",
    "held": "tests.support.nodekinds.held",
}
KINDS = ",".join(f"{kind}={path}" for kind, path in KINDS_SETTING.items())
# What a Celery worker started by a test needs to know these kinds.
WORKER_ENV = {"FLOWGATE_NODE_KINDS": KINDS}


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
