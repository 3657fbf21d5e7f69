"""Noisy neighbour: one workspace floods the engine, another starts a 1-node run every second.

Workspace B starts a 1-node run every `--interval` seconds for `--seconds` seconds, three
times in the same invocation, against one Celery worker with 2 prefork processes (the
deployment of issue 15):

1. `quiet`: alone;
2. `flood`: while workspace A floods the engine with `--flood-runs` wide runs of
   `--flood-width` nodes (each node waits `--node-s`, like a model or HTTP call);
3. `flood, no cap`: the same flood with the per-workspace cap lifted
   (FLOWGATE_WORKSPACE_MAX_RUNNING_NODES and FLOWGATE_WORKSPACE_BROKER_BACKLOG 100000 in the
   worker), which is how the engine dispatched before the cap: every startable node of the
   flood goes to the broker at once.

A run's latency is `finished_at - created_at` of its row (both written by the database
side of Flowgate, so no clock of this process is involved). It prints B's p50/p99 latency of
each phase and the ratios to `quiet` (target: p99 with the flood <= 3 x quiet), and writes
`bench/results/noisy_neighbour.json`. Between phases A's runs are cancelled and the worker
restarted on an empty queue.

Run (PostgreSQL and Redis local):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/noisy_neighbour.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from common import setup_django, start_workers, write_result

QUEUE = "bench-noisy-neighbour"
CAP, BACKLOG = 8, 1  # the defaults of FLOWGATE_WORKSPACE_MAX_RUNNING_NODES and _BROKER_BACKLOG
KINDS = "wait=bench.nodekinds.wait"


def percentile(values: list[float], pct: int) -> float:
    """The `pct`th percentile (inclusive method; p99 of 40 samples lies near the maximum)."""
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=40, help="length of each phase")
    parser.add_argument("--interval", type=float, default=1.0, help="B starts a run this often")
    parser.add_argument("--flood-runs", type=int, default=20)
    parser.add_argument("--flood-width", type=int, default=100)
    parser.add_argument("--node-s", type=float, default=0.2, help="what each node waits")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="broker backlog per workspace")
    args = parser.parse_args()
    os.environ["FLOWGATE_CELERY_QUEUE"] = QUEUE
    os.environ["FLOWGATE_NODE_KINDS"] = KINDS
    os.environ["FLOWGATE_WORKSPACE_MAX_RUNNING_NODES"] = str(CAP)
    setup_django("flowgate_bench_noisy_neighbour")

    from django.db import connection

    from automations.models import TERMINAL_STATUSES, Run, RunNode, RunStatus
    from automations.runs.control import run_cancel
    from automations.services import automation_create, run_start
    from config.celery import app
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, workspace_create

    app.conf.task_default_queue = QUEUE
    app.control.purge()

    def actor_in(path: str) -> Actor:
        workspace, _ = workspace_create(path=path)
        username = path.replace("/", "-")
        member_add(workspace=workspace, username=username, role="admin")
        return Actor.for_member(
            Membership.objects.select_related("user", "workspace__organization").get(
                user__username=username
            )
        )

    def wait_node(node_id: str) -> dict:
        return {"node_id": node_id, "kind": "wait", "metadata": {"sleep_s": args.node_s}}

    flooder, neighbour = actor_in("bench/flooder"), actor_in("bench/neighbour")
    flood = automation_create(
        actor=flooder,
        data={
            "automation_id": "flood",
            "name": "Flood",
            "flow": {"nodes": [wait_node(f"n{i:03d}") for i in range(args.flood_width)]},
            "execution": {"max_parallel": 16},
        },
    )
    single = automation_create(
        actor=neighbour,
        data={"automation_id": "single", "name": "Single", "flow": {"nodes": [wait_node("only")]}},
    )

    def phase(name: str, *, flooding: bool, cap: int = CAP, backlog: int | None = None) -> dict:
        backlog = args.backlog if backlog is None else backlog
        app.control.purge()
        connection.close()
        workers = start_workers(
            1,
            queue=QUEUE,
            name=f"noisy-{name.replace(' ', '-').replace(',', '')}",
            concurrency=args.concurrency,
            env={
                "FLOWGATE_WORKSPACE_MAX_RUNNING_NODES": str(cap),
                "FLOWGATE_WORKSPACE_BROKER_BACKLOG": str(backlog),
            },
        )
        load_before = os.getloadavg()[0]
        try:
            time.sleep(3)  # the worker is consuming
            floods = (
                [run_start(actor=flooder, automation=flood) for _ in range(args.flood_runs)]
                if flooding
                else []
            )
            time.sleep(1)
            started = []
            began = time.monotonic()
            while time.monotonic() - began < args.seconds:
                started.append(run_start(actor=neighbour, automation=single).pk)
                time.sleep(max(0.0, began + len(started) * args.interval - time.monotonic()))
            deadline = time.monotonic() + 600
            while Run.objects.filter(pk__in=started).exclude(status__in=TERMINAL_STATUSES).exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: B's runs did not finish")
                time.sleep(0.2)
            runs = Run.objects.filter(pk__in=started)
            completed = runs.filter(status=RunStatus.COMPLETED)
            latencies = [
                (run.finished_at - run.created_at).total_seconds()
                for run in completed.only("created_at", "finished_at")
            ]
            flood_nodes_done = RunNode.objects.filter(run__in=floods, state="completed").count()
            for run in Run.objects.filter(pk__in=[r.pk for r in floods]).select_related(
                "automation"
            ):
                run_cancel(actor=flooder, run=run, reason="benchmark phase over")
        finally:
            for proc in workers:
                os.killpg(proc.pid, 9)
        figures = {
            "b_runs": len(started),
            "b_completed": len(latencies),
            "b_p50_s": round(percentile(latencies, 50), 3),
            "b_p99_s": round(percentile(latencies, 99), 3),
            "b_max_s": round(max(latencies), 3),
            "flood_node_executions": flood_nodes_done,
            "cap": cap,
            "broker_backlog": backlog,
            "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        }
        print(name, figures, flush=True)
        return figures

    quiet = phase("quiet", flooding=False)
    flooded = phase("flood", flooding=True)
    uncapped = phase("flood, no cap", flooding=True, cap=100000, backlog=100000)
    write_result(
        "noisy_neighbour",
        {
            "worker_processes": args.concurrency,
            "phase_seconds": args.seconds,
            "b_interval_s": args.interval,
            "flood_load": {
                "runs": args.flood_runs,
                "nodes_per_run": args.flood_width,
                "max_parallel": 16,
                "node_s": args.node_s,
            },
            "quiet": quiet,
            "flood": flooded,
            "flood_no_cap": uncapped,
            "p99_ratio_flood_to_quiet": round(flooded["b_p99_s"] / quiet["b_p99_s"], 2),
            "p50_ratio_flood_to_quiet": round(flooded["b_p50_s"] / quiet["b_p50_s"], 2),
            "p99_ratio_no_cap_to_quiet": round(uncapped["b_p99_s"] / quiet["b_p99_s"], 2),
            "target_p99_ratio": 3.0,
        },
    )


if __name__ == "__main__":
    main()
