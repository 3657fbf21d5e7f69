"""Node kinds for engine and fault-injection tests, registered in workers via
FLOWGATE_NODE_KINDS (`WORKER_ENV`) and in the test process via `KINDS_SETTING`.

`sleep` waits `metadata.sleep_s` and reports when it ran (to observe parallelism and to have a
node still executing when a test pauses the run or kills the worker); `fail` always fails;
`held` hangs while the file named by `metadata.hold_file` exists (at most two minutes), so a
test can SIGKILL the worker while the node is executing, remove the file, and let the next
attempt complete at once. Its output records the attempt that produced it. `traced` sleeps like
`sleep` and leaves a file in `metadata.trace_dir` when its code begins and another when it ends
(`executions` reads them), so a test sees executions whose results were discarded too.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from automations.nodes.base import NodeContext, NodeFailure

KINDS_SETTING = {
    "sleep": "tests.support.nodekinds.sleep",
    "fail": "tests.support.nodekinds.fail",
    "held": "tests.support.nodekinds.held",
    "traced": "tests.support.nodekinds.traced",
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


def traced(ctx: NodeContext) -> dict:
    metadata = ctx.node.get("metadata") or {}
    trace = Path(metadata["trace_dir"]) / f"{ctx.run_id}-{ctx.node_id}-{uuid.uuid4().hex}"
    record = {"run_id": ctx.run_id, "node_id": ctx.node_id, "workspace": ctx.workspace}
    _write_atomically(Path(f"{trace}.start"), {**record, "at": time.time()})
    try:
        time.sleep(float(metadata.get("sleep_s", 0.5)))
    finally:
        _write_atomically(Path(f"{trace}.end"), {**record, "at": time.time()})
    return {"status": "completed", "summary": f"traced in attempt {ctx.attempt}"}


def _write_atomically(path: Path, data: dict) -> None:
    partial = path.with_name(f".{path.name}")
    partial.write_text(json.dumps(data))
    partial.replace(path)  # a reader sees the whole file or none


def executions(trace_dir: Path) -> list[dict]:
    """The `traced` executions recorded in `trace_dir`: run_id, node_id, workspace, `started`
    and `ended` (epoch seconds; None while the node code is still executing)."""
    found = []
    for start in sorted(trace_dir.glob("*.start")):
        begun = json.loads(start.read_text())
        started = begun.pop("at")
        end = start.with_name(start.name.removesuffix(".start") + ".end")
        ended = json.loads(end.read_text())["at"] if end.exists() else None
        found.append({**begun, "started": started, "ended": ended})
    return found


def most_at_once(spans: list[dict]) -> int:
    """The largest number of `executions` spans executing at the same moment (one still
    executing counts until now)."""
    now = time.time()
    edges = sorted(
        [(span["started"], 1) for span in spans] + [(span["ended"] or now, -1) for span in spans],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak
