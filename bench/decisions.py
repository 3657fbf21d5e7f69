"""Gate decisions over HTTP: 16 concurrent clients deciding distinct open gates.

Prepares N open gates set-based (one run is taken to its gate by the real engine in-process,
then cloned with `INSERT … SELECT generate_series`), starts gunicorn with several workers,
and has 16 client threads approve distinct gates through `POST …/runs/{id}/gate`, charging the
CPU time of gunicorn and of its PostgreSQL backends to the decisions. The same clients then
make as many small authenticated reads (`GET …/v2/{id}`), the floor of the stack. Then the
same transaction as raw SQL in psycopg (16 threads) for the API/raw ratio, and a race: 50
simultaneous decisions on one gate must apply exactly once. Writes `bench/results/decisions.json`.
`--profile FILE` runs gunicorn under `py-spy record --gil` (Python CPU time, collapsed stacks).
Target (SPEC §12): >= 250 decisions/s, p99 < 150 ms.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/decisions.py --gates 3000
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from common import ROOT, setup_django, write_result

CLIENTS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def prepare(gates: int):
    """One run taken to its gate by the engine in-process, then cloned set-based."""
    from django.db import connection

    from automations import engine, scheduling
    from automations.models import Run
    from automations.services import automation_create, run_start
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, token_issue, workspace_create

    workspace, _ = workspace_create(path="bench/decisions")
    member_add(workspace=workspace, username="requester", role="operator")
    reviewer = member_add(
        workspace=workspace, username="reviewer", role="reviewer", clearances=["financial_record"]
    ).user
    token = token_issue(user=reviewer, workspace=workspace)[1]
    actor = Actor.for_member(
        Membership.objects.select_related("user", "workspace__organization").get(
            user__username="requester"
        )
    )
    automation = automation_create(
        actor=actor,
        data={
            "automation_id": "bench",
            "name": "Bench",
            "agents": [{"agent_id": "w", "model_policy": {"provider": "echo", "model": "echo-1"}}],
            "flow": {
                "nodes": [
                    {"node_id": "draft", "kind": "agent", "agent_id": "w", "objective": "Draft"},
                    {
                        "node_id": "approval",
                        "kind": "approval",
                        "depends_on": ["draft"],
                        "gate": {
                            "decisions": ["approve", "rework", "cancel"],
                            "policy": {
                                "reviewer_eligibility": "any_human_reviewer",
                                "data_classes": ["financial_record"],
                            },
                        },
                    },
                    {
                        "node_id": "publish",
                        "kind": "agent",
                        "agent_id": "w",
                        "depends_on": ["approval"],
                        "objective": "Publish",
                    },
                ]
            },
        },
    )
    pending: list[tuple] = []
    scheduling.dispatch_now = pending.append
    scheduling.advance_now = lambda *args, **kwargs: None
    template = run_start(actor=actor, automation=automation)
    engine.run_advance(template.run_id)
    while pending:
        engine.node_execute(*pending.pop()[:3])
    template = Run.objects.get(pk=template.pk)
    assert template.status == "awaiting_approval", template.status
    with connection.cursor() as cur:
        run_cols = [f.column for f in Run._meta.concrete_fields if f.column not in ("id", "run_id")]
        cur.execute(
            f"INSERT INTO automations_run (run_id, {', '.join(run_cols)}) "
            f"SELECT 'run-bench-' || g, {', '.join(run_cols)} FROM automations_run, "
            "generate_series(1, %s) g WHERE id = %s",
            [gates, template.pk],
        )
        cur.execute(
            "INSERT INTO automations_runnode (run_id, node_id, state, attempts, output, task_id, "
            "attempt_token, not_before, started_at, finished_at, updated_at) "
            "SELECT r.id, n.node_id, n.state, n.attempts, n.output, '', NULL, NULL, n.started_at,"
            " n.finished_at, n.updated_at FROM automations_runnode n "
            "JOIN automations_run r ON r.run_id LIKE 'run-bench-%%' WHERE n.run_id = %s",
            [template.pk],
        )
        from approvals.models import Gate

        gate_cols = [
            f.column for f in Gate._meta.concrete_fields if f.column not in ("id", "run_id")
        ]
        cur.execute(
            f"INSERT INTO approvals_gate (id, run_id, {', '.join(gate_cols)}) "
            f"SELECT 'gate-bench-' || substr(r.run_id, 11), r.id, "
            f"{', '.join('g.' + c for c in gate_cols)} FROM approvals_gate g "
            "JOIN automations_run r ON r.run_id LIKE 'run-bench-%%' WHERE g.run_id = %s",
            [template.pk],
        )
        cur.execute("ANALYZE")
    connection.close()
    return token, [f"run-bench-{n}" for n in range(1, gates + 1)]


def start_gunicorn(port: int, workers: int, profile: str | None = None) -> subprocess.Popen:
    """gunicorn on `port`; with `profile`, under `py-spy record` (collapsed stacks of every
    worker's Python CPU time written to that file when gunicorn stops)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "FLOWGATE_CELERY_QUEUE": "bench-decisions",
        "LOG_LEVEL": "WARNING",
        # Persistent connections (the production default, 60 s) for the whole run, so no
        # phase pays for reconnecting and the backends' CPU time stays attributable.
        "DB_CONN_MAX_AGE": "600",
    }
    # `--gil`: only samples holding the GIL, i.e. Python's own CPU time, not waits on PostgreSQL.
    spy = ["py-spy", "record", "--gil", "--subprocesses", "--format", "raw", "-o", profile, "--"]
    proc = subprocess.Popen(
        [
            *(spy if profile else []),
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    import httpx

    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process among `pids` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `cpu_seconds` readings: processes started in between
    count from zero; those that ended in between (a recycled database connection) are lost,
    so the figure can only be low."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def serving_pids(server: subprocess.Popen) -> tuple[list[int], list[int]]:
    """The gunicorn processes (master and workers, under py-spy too) and the PostgreSQL
    backends connected to the benchmark database, to charge CPU time to a phase."""
    from django.db import connection

    group = os.getpgid(server.pid)
    python = [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and _pgid(int(pid)) == group and int(pid) != server.pid
    ]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cur.fetchall()]
    return python, backends


def db_sessions() -> int:
    """Sessions ever opened on the benchmark database (to see connections being reused)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cur.fetchone()[0]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def load(port: int, token: str, items: list, send) -> tuple[float, list[float], dict]:
    """16 client threads issue `send(http, item)` for every item (each item once); returns the
    elapsed time, every latency and the count of each status code."""
    import httpx

    queue = list(items)
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def client() -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                began = time.perf_counter()
                response = send(http, item)
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began, latencies, statuses


def approve(http, run_id: str):
    return http.post(
        f"/api/automations/v2/runs/{run_id}/gate", json={"decision": "approve", "reason": "ok"}
    )


def read_automation(http, _):
    """The floor: a small authenticated read through the same stack (token, membership,
    automation, its grants; one serializer)."""
    return http.get("/api/automations/v2/bench")


def measured(server, phase) -> tuple[tuple, dict]:
    """Run `phase()` and charge the CPU time gunicorn and its PostgreSQL backends spent."""
    python, backends = serving_pids(server)
    before = cpu_seconds(python), cpu_seconds(backends), db_sessions(), time.process_time()
    result = phase()
    python, backends = serving_pids(server)
    cpu = {
        "client_s": time.process_time() - before[3],
        "gunicorn_s": cpu_spent(before[0], cpu_seconds(python)),
        "postgres_s": cpu_spent(before[1], cpu_seconds(backends)),
        "sessions": db_sessions() - before[2],
    }
    return result, cpu


def figures(count: int, result: tuple, cpu: dict) -> dict:
    elapsed, latencies, statuses = result
    return {
        "requests": count,
        "statuses": {str(k): v for k, v in statuses.items()},
        "per_s": round(count / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        # CPU per request, charged to gunicorn, to its PostgreSQL backends and to this process
        # (the 16 HTTP clients): what the 2 cores must supply for each one, much less sensitive
        # to other load than wall-clock rates.
        "cpu_ms_per_request": {
            name: round(cpu[f"{name}_s"] * 1000 / count, 2)
            for name in ("gunicorn", "postgres", "client")
        },
        "db_sessions_opened": cpu["sessions"],
    }


def race(port: int, token: str, run_id: str) -> dict:
    import httpx

    barrier = threading.Barrier(50)
    codes: list[int] = []

    def one(i: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        ) as http:
            barrier.wait()
            decision = ("approve", "rework", "cancel")[i % 3]
            codes.append(
                http.post(
                    f"/api/automations/v2/runs/{run_id}/gate",
                    json={"decision": decision, "reason": f"r{i}"},
                ).status_code
            )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "applied": codes.count(200),
        "conflicts": codes.count(409),
        "other": len(codes) - codes.count(200) - codes.count(409),
    }


def raw_sql(run_ids: list[str]) -> float:
    """The decision's writes as plain SQL (lock run, insert decision, close gate, complete the
    gate node, queue the run, one lifecycle row), 16 threads: the database's share."""
    import psycopg

    dsn = os.environ["DATABASE_URL"]
    queue = list(run_ids)
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(dsn) as conn:
            while True:
                with lock:
                    if not queue:
                        return
                    run_id = queue.pop()
                with conn.transaction():
                    (run_pk,) = conn.execute(
                        "SELECT id FROM automations_run WHERE run_id = %s FOR UPDATE", (run_id,)
                    ).fetchone()
                    (gate_id,) = conn.execute(
                        "SELECT id FROM approvals_gate WHERE run_id = %s "
                        "AND status = 'open' FOR UPDATE",
                        (run_pk,),
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO approvals_gatedecision (gate_id, run_id, node_id, decision, "
                        "settles, reason, decider_kind, source, reviewed_digest, metadata, "
                        "decided_at) VALUES (%s, %s, 'approval', 'approve', true, 'ok', 'human', "
                        "'api', '', '{}', now())",
                        (gate_id, run_pk),
                    )
                    conn.execute(
                        "UPDATE approvals_gate SET status = 'decided', closed_at = now()"
                        " WHERE id = %s",
                        (gate_id,),
                    )
                    conn.execute(
                        "UPDATE automations_runnode SET state = 'completed', "
                        "output = '{}' WHERE run_id = %s AND node_id = 'approval'",
                        (run_pk,),
                    )
                    conn.execute(
                        "UPDATE automations_run SET status = 'queued', "
                        "version = version + 1 WHERE id = %s",
                        (run_pk,),
                    )
                    conn.execute(
                        "INSERT INTO automations_lifecycleevent (run_id, event, reason, "
                        "stop_kind, metadata, at) VALUES (%s, 'approval_gate_decided', "
                        "'', '', '{}', now())",
                        (run_pk,),
                    )

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gates", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--profile", help="write py-spy collapsed stacks of gunicorn here")
    args = parser.parse_args()
    os.environ["FLOWGATE_CELERY_QUEUE"] = "bench-decisions"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django("flowgate_bench_decisions")
    import logging

    for noisy in ("httpx", "django.request"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    load_before = [round(x, 2) for x in os.getloadavg()]
    token, run_ids = prepare(args.gates + 1 + args.gates)
    api_ids, race_id, raw_ids = run_ids[: args.gates], run_ids[args.gates], run_ids[-args.gates :]
    port = free_port()
    server = start_gunicorn(port, args.workers, args.profile)
    try:
        load(port, token, api_ids[:50], approve)  # warm-up: imports, connections
        decided = api_ids[50:]
        result, cpu = measured(server, lambda: load(port, token, decided, approve))
        floor = measured(server, lambda: load(port, token, decided, read_automation))
        contest = race(port, token, race_id)
    finally:
        # py-spy writes its profile on SIGINT, once gunicorn has stopped.
        os.killpg(server.pid, signal.SIGINT if args.profile else signal.SIGTERM)
        server.wait(timeout=60)
    raw_elapsed = raw_sql(raw_ids)
    from governance.models import AuditEvent

    gate_decided_for_race = AuditEvent.objects.filter(
        event_type="automation.governance.gate_decided", payload__runID=race_id
    ).count()
    api = figures(len(decided), result, cpu)
    raw_rate = len(raw_ids) / raw_elapsed
    write_result(
        "decisions",
        {
            "clients": CLIENTS,
            "gunicorn_workers": args.workers,
            # `uptime` before and after: the machine is shared, so rates depend on its load.
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "decisions": api,
            "floor_small_authenticated_read": figures(len(decided), *floor),
            "raw_sql_decisions_per_s": round(raw_rate, 1),
            "api_vs_raw": round(api["per_s"] / raw_rate, 3),
            "race_50_on_one_gate": {**contest, "gate_decided_audit_events": gate_decided_for_race},
        },
    )


if __name__ == "__main__":
    main()
