"""Engine throughput: N runs of a 5-node echo flow executed by real Celery workers, beside the
floor of the distributed engine and a peer a user would pick instead, in the same run.

Prints runs/s, node executions/s and the per-node overhead (worker-process milliseconds per node
execution), then with the same workers:
- the raw throughput of a no-op Celery task;
- a Celery canvas chain of 5 no-op tasks (`chain(noop, …, noop_count)`), the floor of a
  distributed 5-step run: each step a task message handed on by the worker that ran the last;
- Prefect 3 running the same 5-step echo flow (`bench/prefect_echo.py`) in 2 client processes
  against a Prefect server whose database is this PostgreSQL (task runs and their states
  persisted there), installed by this benchmark into its own virtualenv (`var/bench-prefect/`,
  never a dependency of Flowgate; `--prefect-runs 0` skips it);
and the ratios of Flowgate's runs/s to both. Writes `bench/results/engine.json`.
Target (SPEC §12): >= 30 runs/s with 2 worker processes.

Run (PostgreSQL and Redis local):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/engine.py --runs 300
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from common import ROOT, setup_django, start_workers, write_result

QUEUE = "bench-engine"
PREFECT_VENV = ROOT / "var" / "bench-prefect"
PREFECT_REQUIREMENT = "prefect>=3,<4"


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
    parser.add_argument("--chains", type=int, default=600, help="canvas chains of 5 no-ops")
    parser.add_argument("--prefect-runs", type=int, default=200, help="Prefect flow runs (0: skip)")
    parser.add_argument(
        "--prefect-venv", type=Path, default=PREFECT_VENV, help="Prefect's own virtualenv"
    )
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
        chains_elapsed = celery_chains(app, args.chains)
    finally:
        for proc in procs:
            os.killpg(proc.pid, 9)
    prefect = prefect_echo(args.prefect_runs, args.prefect_venv) if args.prefect_runs else None
    node_executions = args.runs * len(nodes)
    runs_per_s = args.runs / elapsed
    chains_per_s = args.chains / chains_elapsed
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
            "celery_chain_of_5_noops_per_s": round(chains_per_s, 1),
            "flowgate_vs_celery_chain": round(runs_per_s / chains_per_s, 2),
            "prefect": prefect,
            "flowgate_vs_prefect": (
                round(runs_per_s / prefect["runs_per_s"], 2) if prefect else None
            ),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    )


def celery_chains(app, count: int) -> float:
    """Seconds the workers take to run `count` canvas chains of 5 no-op tasks, all published at
    once (the last task of each chain counts it done in Redis)."""
    import redis
    from celery import chain

    from bench.celery_noop import COUNTER, noop, noop_count

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.delete(COUNTER)
    began = time.perf_counter()
    for i in range(count):
        chain(noop.si(i), noop.si(i), noop.si(i), noop.si(i), noop_count.si(i)).apply_async()
    wait_until(lambda: int(client.get(COUNTER) or 0) >= count, timeout=300)
    return time.perf_counter() - began


def prefect_python(venv: Path) -> Path:
    """The Python of the benchmark's own Prefect virtualenv, created and installed on first
    use (`python -m venv` + pip)."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([python, "-c", "import prefect"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "-q", PREFECT_REQUIREMENT], check=True)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefect_echo(runs: int, venv: Path) -> dict:
    """Runs/s of the 5-step echo flow on Prefect 3: a Prefect server on its own database of
    this PostgreSQL server (`flowgate_bench_prefect`, recreated), 2 client processes running
    `runs / 2` flows each, one after the other (as 2 worker processes run Flowgate's)."""
    import psycopg

    python = prefect_python(venv)
    url = urlsplit(os.environ["DATABASE_URL"])
    server_url = url._replace(path="/postgres").geturl()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "flowgate_bench_prefect" WITH (FORCE)')
        conn.execute('CREATE DATABASE "flowgate_bench_prefect"')
    port = free_port()
    home = ROOT / "var" / "bench-prefect-home"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": url._replace(
            scheme="postgresql+asyncpg", path="/flowgate_bench_prefect"
        ).geturl(),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    home.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(
        [python, "-c", "import prefect; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [venv / "bin" / "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/api/health"), timeout=180)
        clients = [
            subprocess.Popen(
                [python, str(ROOT / "bench" / "prefect_echo.py"), str(runs // 2)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [
            json.loads(c.communicate(timeout=1800)[0].strip().splitlines()[-1]) for c in clients
        ]
    finally:
        os.killpg(server.pid, 9)
        server.wait()
    elapsed = max(r["elapsed_s"] for r in results)
    done = sum(r["runs"] for r in results)
    return {
        "version": version,
        "client_processes": 2,
        "runs": done,
        "elapsed_s": round(elapsed, 2),
        "runs_per_s": round(done / elapsed, 1),
        "task_runs_per_s": round(done * 5 / elapsed, 1),
    }


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
