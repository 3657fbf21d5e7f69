"""Mixed load against gunicorn + 2 Celery workers on PostgreSQL + Redis, then the audit check.

Concurrent clients, each a member of one of several workspaces, loop over a weighted mix of
run_now, list runs, read a run, list automations, pause+resume of one of their own runs and a
gate decision on one of their own runs parked at its gate (the workers take every run there).
Each client acts only on runs it started, so no two clients race for one gate and every answer
is predictable: a 409 (a run that moved on before the pause) is expected, anything else is an
error. Reported: throughput, p50/p99 per operation and overall, error count, RSS of the web
and worker process groups at start and end (bound: growth <= `--rss-bound` percent each), and
after the load: `verify_chain` on every workspace, and audit events appended during the load
== successful mutations (+ audited gate refusals, expected 0).

Run (one command; needs REDIS_URL and a PostgreSQL server in DATABASE_URL):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python bench/load.py --duration 180
Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict

from common import setup_django, start_workers, write_result
from decisions import free_port, percentile, start_gunicorn

API = "/api/automations/v2"
QUEUE = "bench-decisions"  # the queue decisions.start_gunicorn publishes to
WORKSPACES = 4
MIX = {  # operation → weight
    "run_now": 20,
    "list_runs": 20,
    "get_run": 20,
    "list_automations": 10,
    "pause_resume": 15,
    "decide": 15,
}
MUTATIONS = {"run_now", "pause", "resume", "decide"}
FLOW = {
    "nodes": [
        # 0.3 s of work per run, so runs spend time queued and running (pause applies there).
        {"node_id": "draft", "kind": "sleep", "metadata": {"sleep_s": 0.3}},
        {
            "node_id": "approval",
            "kind": "approval",
            "depends_on": ["draft"],
            "gate": {"decisions": ["approve", "rework", "cancel"], "rework_targets": ["draft"]},
        },
        {
            "node_id": "publish",
            "kind": "agent",
            "agent_id": "w",
            "depends_on": ["approval"],
            "objective": "Publish",
        },
    ]
}


def prepare(clients: int) -> list[dict]:
    """Workspaces with one automation each; per client a human admin member and its token."""
    from automations.services import automation_create
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, token_issue, workspace_create

    members = []
    for n in range(WORKSPACES):
        workspace, _ = workspace_create(path=f"load/ws{n}")
        owner = member_add(workspace=workspace, username=f"owner{n}", role="admin").user
        actor = Actor.for_member(
            Membership.objects.select_related("user", "workspace__organization").get(
                user=owner, workspace=workspace
            )
        )
        automation_create(
            actor=actor,
            data={
                "automation_id": "load",
                "name": "Load",
                "agents": [
                    {
                        "agent_id": "w",
                        "template_id": "t",
                        "model_policy": {"provider": "echo", "model": "echo-1"},
                    }
                ],
                "flow": FLOW,
            },
        )
    for c in range(clients):
        workspace, _ = workspace_create(path=f"load/ws{c % WORKSPACES}")
        # Admins operate and decide; they are not the requester of another client's runs,
        # and each client decides only its own runs' gates, where the gate is not
        # consequential (no policy), so deciding one's own run is allowed.
        user = member_add(workspace=workspace, username=f"client{c}", role="admin").user
        members.append({"token": token_issue(user=user, workspace=workspace)[1]})
    return members


def group_rss_mb(leader: int) -> float:
    """Resident memory of every process in `leader`'s process group (Linux /proc), in MB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != leader:
                continue
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1])
        except (ProcessLookupError, FileNotFoundError):
            continue
    return round(total * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


class Client(threading.Thread):
    """One API client looping over the mix until `stop` is set."""

    def __init__(self, port: int, token: str, seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        import httpx

        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.random = random.Random(seed)
        self.stop = stop
        self.runs: list[str] = []
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()
        self.successes: Counter = Counter()
        self.errors: list[str] = []
        self.gate_refusals = 0

    def call(self, op: str, method: str, path: str, ok=(200,), allowed=(), **kwargs):
        began = time.perf_counter()
        try:
            response = self.http.request(method, path, **kwargs)
        except Exception as exc:  # a transport error counts as an error, not a crash
            self.errors.append(f"{op}: {exc!r}")
            return None
        self.latencies[op].append(time.perf_counter() - began)
        self.statuses[(op, response.status_code)] += 1
        if response.status_code in ok:
            if op in MUTATIONS:
                self.successes[op] += 1
            return response.json()
        if op == "decide":
            self.gate_refusals += 1  # audited refusals (none expected)
        if response.status_code not in allowed:
            self.errors.append(f"{op}: {response.status_code} {response.text[:200]}")
        return None

    def run(self) -> None:
        ops, weights = zip(*MIX.items(), strict=True)
        while not self.stop.is_set():
            op = self.random.choices(ops, weights)[0]
            if op != "run_now" and op not in ("list_runs", "list_automations") and not self.runs:
                op = "run_now"
            getattr(self, op)()

    def run_now(self):
        body = self.call("run_now", "POST", f"{API}/load/run_now", ok=(201,))
        if body:
            self.runs.append(body["run"]["run_id"])

    def list_runs(self):
        self.call("list_runs", "GET", f"{API}/runs", params={"limit": 50})

    def list_automations(self):
        self.call("list_automations", "GET", API, params={"limit": 50})

    def get_run(self):
        self.call("get_run", "GET", f"{API}/runs/{self.random.choice(self.runs)}")

    def pause_resume(self):
        """Pause the newest run (often still queued or running: else a 409), resume it."""
        run_id = self.runs[-1]
        if self.call("pause", "POST", f"{API}/runs/{run_id}/pause", allowed=(409,)) is not None:
            self.call("resume", "POST", f"{API}/runs/{run_id}/resume")

    def decide(self):
        for run_id in self.random.sample(self.runs, min(3, len(self.runs))):
            body = self.call("get_run", "GET", f"{API}/runs/{run_id}")
            gate = body and body["run"]["checkpoint"]["awaiting_gate"]
            if gate:
                self.call(
                    "decide",
                    "POST",
                    f"{API}/runs/{run_id}/gate",
                    json={
                        "decision": "approve",
                        "approval_request_id": gate["approval_request_id"],
                    },
                )
                return


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
    }


def audit_state() -> tuple[int, dict[str, bool]]:
    from governance.audit import verify_chain
    from governance.models import AuditEvent, Workspace

    verified = {ws.path: verify_chain(ws).ok for ws in Workspace.objects.all()}
    return AuditEvent.objects.count(), verified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--rss-bound", type=float, default=30.0, help="max RSS growth, percent")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL (the Celery broker of the workers)")

    # The `sleep` node kind of the test suite, in this process (flow validation), gunicorn
    # and the workers (all inherit the environment).
    os.environ["FLOWGATE_NODE_KINDS"] = "sleep=tests.support.nodekinds.sleep"
    setup_django("flowgate_bench_load")
    members = prepare(args.clients)
    port = free_port()
    server = start_gunicorn(port, args.web_workers)
    workers = start_workers(2, queue=QUEUE, name="load")
    try:
        time.sleep(3)  # workers ready
        warm = threading.Event()
        warm_client = Client(port, members[0]["token"], -1, warm)
        for _ in range(5):
            warm_client.run_now()
            warm_client.list_runs()
        time.sleep(1)
        audit_before, _ = audit_state()
        rss_start = {
            "web": group_rss_mb(server.pid),
            "workers": round(sum(group_rss_mb(w.pid) for w in workers), 1),
        }
        load_before = os.getloadavg()
        stop = threading.Event()
        clients = [Client(port, m["token"], n, stop) for n, m in enumerate(members)]
        began = time.perf_counter()
        for client in clients:
            client.start()
        time.sleep(args.duration)
        stop.set()
        for client in clients:
            client.join(60)
        elapsed = time.perf_counter() - began
        load_after = os.getloadavg()
        rss_end = {
            "web": group_rss_mb(server.pid),
            "workers": round(sum(group_rss_mb(w.pid) for w in workers), 1),
        }
    finally:
        for proc in (server, *workers):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (server, *workers):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    audit_after, verified = audit_state()
    latencies = defaultdict(list)
    statuses, successes, errors, refusals = Counter(), Counter(), [], 0
    for client in clients:
        for op, values in client.latencies.items():
            latencies[op] += values
        statuses.update(client.statuses)
        successes.update(client.successes)
        errors += client.errors
        refusals += client.gate_refusals
    requests = sum(len(v) for v in latencies.values())
    growth = {k: round(100 * (rss_end[k] - rss_start[k]) / rss_start[k], 1) for k in rss_start}
    audited = audit_after - audit_before
    figures = {
        "duration_s": round(elapsed, 1),
        "clients": args.clients,
        "web_workers": args.web_workers,
        "celery_workers": 2,
        "requests": requests,
        "throughput_rps": round(requests / elapsed, 1),
        "overall": summary([x for v in latencies.values() for x in v]),
        "operations": {op: summary(v) for op, v in sorted(latencies.items())},
        "statuses": {f"{op} {code}": n for (op, code), n in sorted(statuses.items())},
        "errors": len(errors),
        "error_samples": errors[:10],
        "successful_mutations": dict(successes),
        "audit_events_during_load": audited,
        "audited_gate_refusals": refusals,
        "audit_matches_mutations": audited == sum(successes.values()) + refusals,
        "audit_verify_all_ok": all(verified.values()),
        "workspaces_verified": len(verified),
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_end,
        "rss_growth_percent": growth,
        "rss_bound_percent": args.rss_bound,
        "rss_within_bound": all(g <= args.rss_bound for g in growth.values()),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    write_result("load", figures)
    ok = (
        figures["errors"] == 0
        and figures["audit_matches_mutations"]
        and figures["audit_verify_all_ok"]
        and figures["rss_within_bound"]
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
