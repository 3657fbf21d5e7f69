"""Automation pause with 10,000 active runs: time and query count of one `automation_pause`.

One automation holds 10,000 runs that are `queued` or `running` (a third running, each with a
node executing: attempt token and task id set), plus runs the pause must leave alone (awaiting
approval, completed), next to another automation with 20,000 finished runs in the same
workspace. Everything is generated set-based in SQL. The benchmark times one
`automation_pause` (through the service, as the API calls it, including the task revocation
after commit) and counts its queries, checks the result, then does the same for
`automation_resume(resume_runs=True)`. Target (SPEC §12): < 3 s, a bounded number of queries.

Run (PostgreSQL and Redis local; it creates its own database `flowgate_bench_pause` and
publishes to its own queue, which it empties afterwards):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
  .venv/bin/python bench/automation_pause.py --runs 10000
"""

from __future__ import annotations

import argparse
import json
import os
import time

from common import setup_django, write_result

QUEUE = "bench-automation-pause"

_RUNS = """
INSERT INTO automations_run (run_id, workspace_id, automation_id, requested_by_id, trigger_type,
    status, automation_snapshot, pause_reason, resume_reason, detail, stop_kind, stop_reason,
    created_at, updated_at, started_at, lease_owner, lease_epoch, heartbeat_at, version)
SELECT %(prefix)s || g, %(workspace)s, %(automation)s, %(user)s, 'manual',
    CASE WHEN %(status)s <> '' THEN %(status)s WHEN g %% 3 = 0 THEN 'running' ELSE 'queued' END,
    %(snapshot)s::jsonb, '', '', '', '', '',
    now() - make_interval(secs => g), now(), now(), 'bench:1', 1, now(), 2
FROM generate_series(1, %(count)s) AS g
"""
# Two nodes per run; in a running run the first one is executing (token and task id set).
_NODES = """
INSERT INTO automations_runnode (run_id, node_id, state, attempts, task_id, attempt_token,
    updated_at)
SELECT r.id, n.node_id,
    CASE WHEN r.status = 'running' AND n.node_id = 'a' THEN 'running'
         WHEN r.status IN ('completed') THEN 'completed' ELSE 'pending' END,
    CASE WHEN r.status = 'running' AND n.node_id = 'a' THEN 1 ELSE 0 END,
    CASE WHEN r.status = 'running' AND n.node_id = 'a' THEN gen_random_uuid()::text ELSE '' END,
    CASE WHEN r.status = 'running' AND n.node_id = 'a' THEN gen_random_uuid() END,
    now()
FROM automations_run r CROSS JOIN (VALUES ('a'), ('b')) AS n(node_id)
WHERE r.run_id LIKE %(prefix)s || '%%'
"""
_QUEUED_EVENTS = """
INSERT INTO automations_lifecycleevent (run_id, event, reason, stop_kind, metadata, at)
SELECT id, 'run_queued', 'started by bench', '', '{}'::jsonb, created_at FROM automations_run
"""


def generate(cursor, *, prefix, workspace, automation, user, snapshot, count, status=""):
    params = {
        "prefix": prefix,
        "workspace": workspace.pk,
        "automation": automation.pk,
        "user": user.pk,
        "snapshot": snapshot,
        "count": count,
        "status": status,
    }
    cursor.execute(_RUNS, params)
    cursor.execute(_NODES, params)


def timed(call, queries_context):
    """Run `call` once; return (result, seconds, queries) with the queries it executed."""
    from django.db import connection

    with queries_context(connection) as queries:
        began = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - began
    return result, elapsed, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000, help="queued/running runs")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL: the pause revokes node tasks through the broker")
    os.environ["FLOWGATE_CELERY_QUEUE"] = QUEUE
    setup_django("flowgate_bench_pause")

    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from automations import scheduling
    from automations.automation_control import automation_pause, automation_resume
    from automations.models import LifecycleEvent, NodeState, Run, RunNode
    from automations.services import automation_create, automation_snapshot
    from config.celery import app
    from governance.actors import Actor
    from governance.models import Membership
    from governance.services import member_add, workspace_create

    app.conf.task_default_queue = QUEUE
    workspace, _ = workspace_create(path="bench/pause")
    member_add(workspace=workspace, username="bench", role="admin")
    membership = Membership.objects.select_related("user", "workspace__organization").get(
        user__username="bench"
    )
    actor = Actor.for_member(membership)
    agents = [{"agent_id": "w", "model_policy": {"provider": "echo", "model": "echo-1"}}]
    flow = {
        "nodes": [
            {"node_id": "a", "kind": "agent", "agent_id": "w", "objective": "A"},
            {
                "node_id": "b",
                "kind": "agent",
                "agent_id": "w",
                "objective": "B",
                "depends_on": ["a"],
            },
        ]
    }

    def new_automation(automation_id):
        return automation_create(
            actor=actor,
            data={
                "automation_id": automation_id,
                "name": automation_id,
                "flow": flow,
                "agents": agents,
            },
        )

    target, other = new_automation("bench-target"), new_automation("bench-other")
    snapshot = json.dumps(automation_snapshot(target))
    began = time.perf_counter()
    with connection.cursor() as cursor:
        common = {"workspace": workspace, "user": membership.user, "snapshot": snapshot}
        generate(cursor, prefix="run-a-", automation=target, count=args.runs, **common)
        generate(
            cursor,
            prefix="run-w-",
            automation=target,
            count=200,
            status="awaiting_approval",
            **common,
        )
        generate(
            cursor, prefix="run-c-", automation=target, count=1000, status="completed", **common
        )
        generate(
            cursor, prefix="run-o-", automation=other, count=20_000, status="completed", **common
        )
        cursor.execute(_QUEUED_EVENTS)
        cursor.execute("ANALYZE")
    generated_s = time.perf_counter() - began
    running_before = RunNode.objects.filter(run__automation=target, state=NodeState.RUNNING).count()

    # Time the after-commit work (revocation, scheduling) on its own as well.
    after_commit = {"revoke_s": 0.0, "schedule_s": 0.0}

    def measured(name, func):
        def wrapper(*call_args):
            started = time.perf_counter()
            func(*call_args)
            after_commit[name] += time.perf_counter() - started

        return wrapper

    scheduling.revoke_now = measured("revoke_s", scheduling.revoke_now)
    scheduling.advance_many_now = measured("schedule_s", scheduling.advance_many_now)

    paused, pause_s, pause_queries = timed(
        lambda: automation_pause(actor=actor, automation=target, reason="bench"),
        CaptureQueriesContext,
    )
    statuses = dict(
        Run.objects.filter(automation=target).values_list("status").annotate(n=Count("id"))
    )
    pause_ok = (
        paused.runs == args.runs
        and statuses.get("paused") == args.runs
        and statuses.get("awaiting_approval") == 200
        and statuses.get("completed") == 1000
        and not RunNode.objects.filter(run__automation=target, state=NodeState.RUNNING).exists()
        and LifecycleEvent.objects.filter(event="run_paused").count() == args.runs
    )

    resumed, resume_s, resume_queries = timed(
        lambda: automation_resume(actor=actor, automation=target, resume_runs=True),
        CaptureQueriesContext,
    )
    resume_ok = (
        resumed.runs == args.runs
        and Run.objects.filter(automation=target, status="queued").count() == args.runs
        and LifecycleEvent.objects.filter(event="run_resumed").count() == args.runs
    )
    with app.connection_for_write() as conn:
        published = conn.default_channel.client.llen(QUEUE)
        conn.default_channel.client.delete(QUEUE)

    for name, queries in (("pause", pause_queries), ("resume", resume_queries)):
        print(f"{name} statements (seconds, SQL):")
        for query in queries:
            print(f"  {float(query['time']):7.3f}  {query['sql'][:110]}")
    write_result(
        "automation_pause",
        {
            "active_runs": args.runs,
            "running_nodes_fenced": running_before,
            "other_runs_in_workspace": 21_200,
            "generate_s": round(generated_s, 2),
            "pause_s": round(pause_s, 3),
            "pause_queries": len(pause_queries),
            "pause_revoke_after_commit_s": round(after_commit["revoke_s"], 3),
            "pause_ok": pause_ok,
            "resume_runs_s": round(resume_s, 3),
            "resume_queries": len(resume_queries),
            "resume_schedule_after_commit_s": round(after_commit["schedule_s"], 3),
            "resume_messages_published": published,
            "resume_ok": resume_ok,
        },
    )


if __name__ == "__main__":
    main()
