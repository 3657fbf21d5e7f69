"""Engine throughput: N runs of a 5-node echo flow executed by real Celery workers.

Prints runs/s, node executions/s and the per-node overhead (worker-process milliseconds per node
execution), plus the raw throughput of a no-op Celery task measured with the same workers, and
writes `bench/results/engine.json`. Target (SPEC §12): >= 30 runs/s with 2 worker processes.

Run (PostgreSQL and Redis local):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/engine.py --runs 300
"""

from __future__ import annotations

import argparse
import os
import time

from common import setup_django, start_workers, write_result

QUEUE = "bench-engine"


def wait_until(predicate, timeout: float) -> float:
    began = time.perf_counter()
    while not predicate():
        if time.perf_counter() - began > timeout:
            raise SystemExit("benchmark timed out")
        time.sleep(0.05)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (celery worker)")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--noop", type=int, default=3000, help="no-op tasks for the yardstick")
    args = parser.parse_args()
    os.environ["FLOWGATE_CELERY_QUEUE"] = QUEUE
    setup_django("flowgate_bench_engine")

    from django.db import connection

    from automations.models import Run, RunStatus
    from automations.services import automation_create, run_start
    from config.celery import app
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, workspace_create

    app.conf.task_default_queue = QUEUE
    app.control.purge()
    workspace, _ = workspace_create(path="bench/engine")
    member_add(workspace=workspace, username="bench", role="admin")
    actor = Actor.for_member(
        Membership.objects.select_related("user", "workspace__organization").get(
            user__username="bench"
        )
    )
    nodes = [
        {
            "node_id": f"n{i}",
            "kind": "agent",
            "agent_id": "w",
            "objective": f"step {i}",
            "depends_on": [f"n{i - 1}"] if i else [],
        }
        for i in range(5)
    ]
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "bench",
            "name": "Bench",
            "flow": {"nodes": nodes},
            "agents": [{"agent_id": "w", "model_policy": {"provider": "echo", "model": "echo-1"}}],
        },
    )
    # Runs are queued before the workers start, so the timing covers execution only.
    for _ in range(args.runs):
        run_start(actor=actor, automation=automation)
    connection.close()

    procs = start_workers(
        args.workers,
        queue=QUEUE,
        name="bench",
        concurrency=args.concurrency,
        extra=("-I", "bench.celery_noop"),
    )
    pool = args.workers * args.concurrency
    try:
        elapsed = wait_until(
            lambda: Run.objects.filter(status=RunStatus.COMPLETED).count() == args.runs,
            timeout=600,
        )
        not_completed = Run.objects.exclude(status=RunStatus.COMPLETED).count()
        from bench.celery_noop import noop

        # Yardstick: the same workers consuming no-op tasks (queue drained ≈ all executed; at
        # most one prefetched task per pool process is still in flight).
        began = time.perf_counter()
        for i in range(args.noop):
            noop.delay(i)

        def drained() -> bool:
            with app.connection_for_read() as conn:
                return conn.default_channel.client.llen(QUEUE) == 0

        wait_until(drained, timeout=120)
        noop_elapsed = time.perf_counter() - began
    finally:
        for proc in procs:
            os.killpg(proc.pid, 9)
    node_executions = args.runs * len(nodes)
    write_result(
        "engine",
        {
            "runs": args.runs,
            "nodes_per_run": len(nodes),
            "worker_processes": pool,
            "elapsed_s": round(elapsed, 2),
            "runs_per_s": round(args.runs / elapsed, 1),
            "node_executions_per_s": round(node_executions / elapsed, 1),
            "per_node_overhead_ms": round(elapsed * pool / node_executions * 1000, 2),
            "not_completed": not_completed,
            "celery_noop_tasks_per_s": round(args.noop / noop_elapsed, 1),
        },
    )


if __name__ == "__main__":
    main()
