"""Engine at scale: node executions/s and peak RSS per worker process by flow size and shape.

For each case (a chain `n0 → n1 → …` or a wide fan-out `root → leaf1 … leafN-1`, at 5, 200
and 1,000 nodes) it queues enough runs of one echo-agent flow to make about `--nodes` node
executions (at least two runs, so both pool processes have work), then starts a fresh Celery
worker (2 prefork processes, its own queue) and waits until every run completed.

- node executions/s = the case's node executions / (last run's `finished_at` - first run's
  `started_at`), both written by the engine, so the worker's start-up is not counted;
- peak RSS per worker process = the largest `VmHWM` (peak resident set) among the pool
  processes, read from `/proc` just before the worker is stopped. A fresh worker per case means
  the peak belongs to that case.

A case that does not finish within `--timeout` seconds is reported with the node executions
completed so far (`completed: false`). Ratios against the 5-node case of the same shape are the
figures to compare (the machine is shared; the load average is recorded before and after).
Targets (issue 15): node executions/s at 1,000 nodes >= 0.7 x at 5 nodes; peak RSS at 1,000
nodes <= 1.5 x at 5 nodes.

Run (PostgreSQL and Redis local):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/engine_scale.py [--nodes 2000] [--sizes 5,200,1000] [--shapes chain,fanout]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from common import setup_django, start_workers, write_result

QUEUE = "bench-engine-scale"
MAX_PARALLEL = 16


def flow(shape: str, size: int) -> list[dict]:
    """A `size`-node echo flow: a chain, or one root every other node depends on."""

    def node(i: int, deps: list[str]) -> dict:
        return {
            "node_id": f"n{i}",
            "kind": "agent",
            "agent_id": "w",
            "objective": f"step {i}",
            "depends_on": deps,
        }

    if shape == "chain":
        return [node(i, [f"n{i - 1}"] if i else []) for i in range(size)]
    return [node(0, [])] + [node(i, ["n0"]) for i in range(1, size)]


def pool_pids(main_pid: int) -> list[int]:
    """The prefork pool processes of the worker whose main process is `main_pid`."""
    children = []
    for task in Path(f"/proc/{main_pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(pid) for pid in text)
    return children


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_case(actor, shape: str, size: int, total: int, timeout: float) -> dict:
    from django.db import connection
    from django.db.models import Max, Min

    from automations.models import NodeState, Run, RunNode, RunStatus
    from automations.services import automation_create, run_start

    automation = automation_create(
        actor=actor,
        data={
            "automation_id": f"{shape}-{size}",
            "name": f"{shape} of {size}",
            "flow": {"nodes": flow(shape, size)},
            "agents": [{"agent_id": "w", "model_policy": {"provider": "echo", "model": "echo-1"}}],
            "execution": {"max_parallel": MAX_PARALLEL},
        },
    )
    runs = max(2, total // size)
    for _ in range(runs):
        run_start(actor=actor, automation=automation)
    connection.close()
    ours = Run.objects.filter(automation=automation)
    load_before = load_average()
    [proc] = start_workers(1, queue=QUEUE, name=f"scale-{shape}-{size}-", concurrency=2)
    began = time.monotonic()
    completed = True
    peak = 0.0
    try:
        while ours.filter(status=RunStatus.COMPLETED).count() < runs:
            others = ours.exclude(status__in=[RunStatus.COMPLETED, RunStatus.QUEUED])
            others = others.exclude(status=RunStatus.RUNNING)
            if others.exists():
                raise SystemExit(f"{shape}-{size}: a run ended {others.first().status}")
            if time.monotonic() - began > timeout:
                completed = False
                break
            for pid in pool_pids(proc.pid):  # sampled too, in case a process is replaced
                peak = max(peak, peak_rss_mb(pid))
            time.sleep(0.5)
        for pid in pool_pids(proc.pid):
            peak = max(peak, peak_rss_mb(pid))
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    executed = RunNode.objects.filter(run__automation=automation, state=NodeState.COMPLETED).count()
    span = ours.aggregate(first=Min("started_at"), last=Max("finished_at"))
    if completed:
        elapsed = (span["last"] - span["first"]).total_seconds()
    else:
        elapsed = time.monotonic() - began
    return {
        "shape": shape,
        "nodes": size,
        "runs": runs,
        "node_executions": executed,
        "completed": completed,
        "elapsed_s": round(elapsed, 2),
        "node_executions_per_s": round(executed / elapsed, 1) if elapsed else None,
        "peak_rss_mb_per_worker_process": round(peak, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000, help="node executions per case")
    parser.add_argument("--sizes", default="5,200,1000")
    parser.add_argument("--shapes", default="chain,fanout")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case")
    parser.add_argument("--name", default="engine_scale", help="results file name")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    os.environ["FLOWGATE_CELERY_QUEUE"] = QUEUE
    # The 1,000-node flows are above the default node limit (500): raise it for this run.
    os.environ["FLOWGATE_FLOW_MAX_NODES"] = str(max(sizes))
    setup_django("flowgate_bench_engine_scale")

    from automations.models import Run
    from config.celery import app
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, workspace_create

    app.conf.task_default_queue = QUEUE
    app.control.purge()
    workspace, _ = workspace_create(path="bench/scale")
    member_add(workspace=workspace, username="bench", role="admin")
    actor = Actor.for_member(
        Membership.objects.select_related("user", "workspace__organization").get(
            user__username="bench"
        )
    )
    cases = []
    for shape in args.shapes.split(","):
        for size in sizes:
            case = run_case(actor, shape, size, args.nodes, args.timeout)
            print(case, flush=True)
            cases.append(case)
            Run.objects.filter(automation__automation_id=f"{shape}-{size}").delete()
            app.control.purge()  # what a case that timed out left queued
    ratios = {}
    for shape in args.shapes.split(","):
        by_size = {c["nodes"]: c for c in cases if c["shape"] == shape}
        base = by_size.get(min(sizes))
        for size, case in by_size.items():
            if size == min(sizes) or not base:
                continue
            ratios[f"{shape}_{size}_vs_{min(sizes)}"] = {
                "node_executions_per_s": round(
                    case["node_executions_per_s"] / base["node_executions_per_s"], 2
                ),
                "peak_rss": round(
                    case["peak_rss_mb_per_worker_process"] / base["peak_rss_mb_per_worker_process"],
                    2,
                ),
            }
    write_result(
        args.name,
        {
            "worker_processes": 2,
            "max_parallel": MAX_PARALLEL,
            "node_executions_per_case": args.nodes,
            "cases": cases,
            "ratios": ratios,
            "targets": {"node_executions_per_s": ">= 0.7", "peak_rss": "<= 1.5"},
        },
    )


if __name__ == "__main__":
    main()
