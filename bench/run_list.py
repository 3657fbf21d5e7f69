"""Run list at scale: `GET /api/automations/v2/runs?limit=200` with 1,000,000 runs.

Creates its own database (`flowgate_bench_run_list`): 1,000 organisations, each with one
workspace and one automation (a 3-node chain), then the runs set-based in SQL
(`INSERT … SELECT generate_series`), spread evenly over the workspaces with mixed statuses and
interleaved creation times, and 3 RunNode rows per run (state and output following the run's
status). The measured workspace's runs also get lifecycle history (`--events` per run), so the
JSON measured is what a real run renders.

It then measures, in-process through `django.test.Client` with a viewer's Bearer token (the
whole Django stack: middleware, authentication, tenancy, the view, JSON rendering), p50/p95 of
the request after a warm-up, the SQL query count for limit 10 vs 200, and the plan of the page
query. Target (SPEC §12): p50 < 50 ms, equal query counts.

Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \
bench/run_list.py` (about 3 minutes on 2 vCPUs, most of it generating the rows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import setup_django, write_result

MEASURED_PATH = "/api/automations/v2/runs"
FLOW = {
    "nodes": [
        {"node_id": "n0", "kind": "agent", "agent_id": "writer", "objective": "Step 0"},
        {
            "node_id": "n1",
            "kind": "agent",
            "agent_id": "writer",
            "objective": "Step 1",
            "depends_on": ["n0"],
        },
        {
            "node_id": "n2",
            "kind": "agent",
            "agent_id": "writer",
            "objective": "Step 2",
            "depends_on": ["n1"],
        },
    ]
}
AGENTS = [
    {
        "agent_id": "writer",
        "template_id": "template-a",
        "display_name": "Writer",
        "model_policy": {"provider": "echo", "model": "echo-1"},
    }
]
# Run statuses, cycled through within each workspace; node states follow (see NODE_STATE).
STATUSES = [
    "completed",
    "completed",
    "completed",
    "completed",
    "failed",
    "cancelled",
    "queued",
    "running",
    "paused",
    "awaiting_approval",
]
# (run status, node index) → node state; anything not listed is pending.
NODE_STATE = {
    "completed": ["completed", "completed", "completed"],
    "failed": ["completed", "failed", "pending"],
    "cancelled": ["completed", "pending", "pending"],
    "running": ["completed", "running", "pending"],
    "paused": ["completed", "pending", "pending"],
    "awaiting_approval": ["completed", "completed", "pending"],
}


def timed(label: str, timings: dict, fn, *args):
    began = time.perf_counter()
    result = fn(*args)
    timings[label] = round(time.perf_counter() - began, 1)
    print(f"  {label}: {timings[label]} s", flush=True)
    return result


def column_fill(model, explicit: dict[str, str]) -> tuple[str, str]:
    """`(columns, select expressions)` for an INSERT … SELECT into `model`'s table.

    Columns not in `explicit` get their model default (so a field added later does not break
    the benchmark): NULL when nullable, else the default as a literal, else now() for dates.
    """
    from django.db import models

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in explicit:
            continue
        columns.append(field.column)
        if field.column in explicit:
            values.append(explicit[field.column])
            continue
        default = field.get_default()  # "" for string fields without a default
        if field.null:
            values.append("NULL")
        elif isinstance(field, models.JSONField):
            values.append(f"'{json.dumps(default)}'::jsonb")
        elif isinstance(field, models.DateTimeField):
            values.append("now()")
        elif isinstance(default, bool):
            values.append("true" if default else "false")
        elif isinstance(default, int | float):
            values.append(str(default))
        elif isinstance(default, str):
            values.append("'" + default.replace("'", "''") + "'")
        else:
            raise RuntimeError(f"no value for {model.__name__}.{field.name}")
    return ", ".join(columns), ", ".join(values)


def create_tenants(workspaces: int):
    """Organisations, workspaces and one automation each; a viewer's token in the measured
    workspace and in its neighbour (whose runs get no lifecycle history, for comparison)."""
    from automations.models import Automation
    from governance.models import Organization, PrincipalKind, Role, User, Workspace
    from governance.services import member_add, token_issue, workspace_create

    owner = User.objects.create(username="bench-owner", kind=PrincipalKind.HUMAN)
    orgs = Organization.objects.bulk_create(
        Organization(slug=f"org{n:04d}", name=f"Org {n}") for n in range(workspaces)
    )
    spaces = Workspace.objects.bulk_create(
        Workspace(organization=org, slug="ops", name="Ops") for org in orgs
    )
    Automation.objects.bulk_create(
        Automation(
            workspace=ws,
            automation_id=f"auto-{n:04d}",
            name=f"Automation {n}",
            flow=FLOW,
            agents=AGENTS,
            execution={"max_parallel": 1},
            created_by=owner,
        )
        for n, ws in enumerate(spaces)
    )
    tokens = []
    for n, workspace in enumerate(spaces[len(spaces) // 2 :][:2]):
        workspace_create(path=workspace.path)  # its audit chain head (the token is audited)
        reader = member_add(workspace=workspace, username=f"bench-reader-{n}", role=Role.VIEWER)
        tokens.append(token_issue(user=reader.user, workspace=workspace)[1])
    return spaces[len(spaces) // 2], tokens


def reissue_tokens():
    """The measured workspace of an earlier run and fresh tokens for its two readers (a raw
    token is only known when issued)."""
    from governance.models import User
    from governance.services import token_issue

    tokens, measured = [], None
    for n in range(2):
        reader = User.objects.get(username=f"bench-reader-{n}")
        membership = reader.memberships.select_related("workspace__organization").get()
        measured = measured or membership.workspace
        tokens.append(token_issue(user=reader, workspace=membership.workspace)[1])
    return measured, tokens


def insert_runs(runs: int, workspaces: int) -> None:
    """`runs` runs, run g in workspace g % workspaces, one every 0.5 s backwards from now."""
    from django.db import connection

    from automations.models import Run

    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    # By g / workspaces, not g: every workspace gets every status, in a repeating pattern.
    status = f"({statuses})[1 + ((g / {workspaces}) % {len(STATUSES)})]"
    terminal = f"{status} IN ('completed', 'failed', 'cancelled')"
    created = "(now() - make_interval(secs => g * 0.5))"
    snapshot = (
        "jsonb_build_object('automation_id', a.automation_id, 'name', a.name, 'version', 1, "
        f"'flow', '{json.dumps(FLOW)}'::jsonb, 'agents', '{json.dumps(AGENTS)}'::jsonb, "
        "'execution', '{\"max_parallel\": 1}'::jsonb, 'workspace_root', '', "
        "'handoff_config', NULL, 'created_by', 'bench-owner')"
    )
    columns, values = column_fill(
        Run,
        {
            "run_id": "'run-' || lpad(to_hex(g), 12, '0')",
            "workspace_id": "a.workspace_id",
            "automation_id": "a.id",
            "trigger_type": "'manual'",
            "status": status,
            "automation_snapshot": snapshot,
            "detail": f"CASE WHEN {status} = 'failed' THEN 'node n1 failed' ELSE '' END",
            "pause_reason": f"CASE WHEN {status} = 'paused' THEN 'paused by operator' ELSE '' END",
            "stop_kind": f"CASE WHEN {status} = 'cancelled' THEN 'operator_stopped' ELSE '' END",
            "stop_reason": f"CASE WHEN {status} = 'cancelled' THEN 'cancelled' ELSE '' END",
            "last_failure": (
                f"CASE WHEN {status} = 'failed' THEN jsonb_build_object('node_id', 'n1', "
                "'reason', 'provider error', 'failure_kind', 'node_failed') END"
            ),
            "created_at": created,
            "updated_at": f"{created} + interval '3 seconds'",
            "started_at": f"CASE WHEN {status} <> 'queued' THEN {created} + '1 s'::interval END",
            "finished_at": f"CASE WHEN {terminal} THEN {created} + interval '3 seconds' END",
            "version": "4",
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_automation AS SELECT row_number() OVER (ORDER BY id) - 1 "
            "AS idx, id, workspace_id, automation_id, name FROM automations_automation"
        )
        cursor.execute("CREATE INDEX ON bench_automation (idx)")
        cursor.execute(
            f"INSERT INTO automations_run ({columns}) SELECT {values} "
            f"FROM generate_series(0, {runs - 1}) g "
            f"JOIN bench_automation a ON a.idx = g % {workspaces}"
        )


def insert_nodes(workspace_id: int | None) -> None:
    """Three RunNode rows per run (of one workspace when `workspace_id` is given)."""
    from django.db import connection

    from automations.models import RunNode

    cases = " ".join(
        f"WHEN r.status = '{status}' AND n.i = {i} THEN '{state}'"
        for status, states in NODE_STATE.items()
        for i, state in enumerate(states)
    )
    state = f"(CASE {cases} ELSE 'pending' END)"
    columns, values = column_fill(
        RunNode,
        {
            "run_id": "r.id",
            "node_id": "n.node_id",
            "state": state,
            "attempts": f"CASE WHEN {state} = 'pending' THEN 0 ELSE 1 END",
            "output": (
                f"CASE WHEN {state} = 'completed' THEN jsonb_build_object('status', "
                "'completed', 'provider', 'echo', 'model', 'echo-1', 'text', "
                "'echo: ' || n.node_id || ' of ' || r.run_id) END"
            ),
            "started_at": f"CASE WHEN {state} <> 'pending' THEN r.started_at END",
            "finished_at": f"CASE WHEN {state} IN ('completed', 'failed') THEN r.updated_at END",
            "updated_at": "r.updated_at",
        },
    )
    where = f"WHERE r.workspace_id = {int(workspace_id)}" if workspace_id is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO automations_runnode ({columns}) SELECT {values} "
            "FROM automations_run r CROSS JOIN (VALUES (0, 'n0'), (1, 'n1'), (2, 'n2')) "
            f"AS n(i, node_id) {where}"
        )


def insert_lifecycle(workspace_id: int, per_run: int) -> None:
    """`per_run` lifecycle events for each run of the measured workspace."""
    from django.db import connection

    from automations.models import LifecycleEvent

    names = ["run_queued", "run_execution_claimed"]
    while len(names) < per_run:
        names += ["node_started", "node_completed"]
    events = "ARRAY[" + ", ".join(f"'{n}'" for n in names[:per_run]) + "]"
    columns, values = column_fill(
        LifecycleEvent,
        {
            "run_id": "r.id",
            "event": f"({events})[e]",
            "reason": "''",
            "metadata": "jsonb_build_object('node_id', 'n' || ((e - 1) % 3), 'attempt', 1)",
            "at": "r.created_at + make_interval(secs => e * 0.2)",
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO automations_lifecycleevent ({columns}) SELECT {values} "
            f"FROM automations_run r CROSS JOIN generate_series(1, {per_run}) e "
            f"WHERE r.workspace_id = {int(workspace_id)}"
        )


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def latencies(client, path: str, params: dict, requests: int, warmup: int) -> dict:
    for _ in range(warmup):
        assert client.get(path, params).status_code == 200
    samples, cpu, count, size = [], [], 0, 0
    for _ in range(requests):
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, params)
        samples.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert response.status_code == 200, response.content[:300]
        count, size = response.json()["count"], len(response.content)
    samples.sort()
    return {
        "requests": requests,
        "runs_returned": count,
        "response_bytes": size,
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
        "max_ms": round(samples[-1], 1),
        # CPU time of this process alone (Django, the view, JSON), whatever else runs
        # on the machine; PostgreSQL's share is not in it.
        "python_cpu_p50_ms": round(statistics.median(cpu), 1),
    }


def queries_of(client, path: str, params: dict) -> tuple[int, float, list[str]]:
    """Queries of one request, the seconds spent in them, and their SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(path, params).status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    seconds = sum(float(q["time"]) for q in captured.captured_queries)
    return len(sql), seconds, sql


def page_plan(sql: list[str]) -> list[str]:
    """EXPLAIN ANALYZE of the page query (the one on automations_run with LIMIT)."""
    from django.db import connection

    page = next(q for q in sql if 'FROM "automations_run"' in q and "LIMIT" in q)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + page)
        return [row[0] for row in cursor.fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--events", type=int, default=8, help="lifecycle events per run")
    parser.add_argument(
        "--nodes",
        choices=["all", "measured"],
        default="all",
        help="RunNode rows for every run, or only the measured workspace's",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again on the rows an earlier run generated (new tokens, same data)",
    )
    args = parser.parse_args()
    setup_django("flowgate_bench_run_list", fresh=not args.reuse)

    from django.db import transaction
    from django.test import Client

    from automations.models import LifecycleEvent, Run, RunNode

    timings: dict[str, float] = {}
    if args.reuse and Run.objects.exists():
        measured, tokens = reissue_tokens()
    else:
        print("generating", flush=True)
        with transaction.atomic():
            measured, tokens = timed("tenants_s", timings, create_tenants, args.workspaces)
        with transaction.atomic():
            timed("runs_s", timings, insert_runs, args.runs, args.workspaces)
        with transaction.atomic():
            scope = None if args.nodes == "all" else measured.pk
            timed("nodes_s", timings, insert_nodes, scope)
        with transaction.atomic():
            timed("lifecycle_s", timings, insert_lifecycle, measured.pk, args.events)
        timed("vacuum_analyze_s", timings, analyze)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {tokens[0]}", SERVER_NAME="localhost")
    bare = Client(HTTP_AUTHORIZATION=f"Bearer {tokens[1]}", SERVER_NAME="localhost")
    print("measuring", flush=True)
    main_list = latencies(client, MEASURED_PATH, {"limit": 200}, args.requests, args.warmup)
    q10, _, _ = queries_of(client, MEASURED_PATH, {"limit": 10})
    q200, sql_seconds, sql = queries_of(client, MEASURED_PATH, {"limit": 200})
    first = client.get(MEASURED_PATH, {"limit": 200}).json()
    deep_params, deep_page = {"limit": 200, "cursor": first["next_cursor"]}, 2
    while deep_page < 4 and deep_params["cursor"]:  # the cursor of page 4 (of 5)
        following = client.get(MEASURED_PATH, deep_params).json()["next_cursor"]
        if following is None:
            break
        deep_params["cursor"], deep_page = following, deep_page + 1
    others = {
        "limit_200_runs_without_lifecycle_history": latencies(
            bare, MEASURED_PATH, {"limit": 200}, args.requests, args.warmup
        ),
        "limit_1_fixed_cost": latencies(client, MEASURED_PATH, {"limit": 1}, args.requests, 5),
        "default_limit_50": latencies(client, MEASURED_PATH, {}, args.requests, args.warmup),
        "status_completed_limit_200": latencies(
            client, MEASURED_PATH, {"status": "completed", "limit": 200}, 50, 5
        ),
        "one_automation_limit_200": latencies(
            client,
            f"/api/automations/v2/{first['runs'][0]['automation_id']}/runs",
            {"limit": 200},
            50,
            5,
        ),
    }
    if deep_params["cursor"]:
        others[f"page_{deep_page}_by_cursor_limit_200"] = latencies(
            client, MEASURED_PATH, deep_params, 50, 5
        )
    plan = page_plan(sql)
    figures = {
        "runs": Run.objects.count(),
        "workspaces": args.workspaces,
        "runs_in_measured_workspace": Run.objects.filter(workspace=measured).count(),
        "run_nodes": RunNode.objects.count(),
        "lifecycle_events": LifecycleEvent.objects.count(),
        "nodes_for": args.nodes,
        "generation_s": timings,
        "list_limit_200": main_list,
        "queries_limit_10": q10,
        "queries_limit_200": q200,
        "equal_query_counts": q10 == q200,
        "sql_ms_in_one_limit_200_request": round(sql_seconds * 1000, 1),
        "page_query_plan": plan,
        "other_lists": others,
        "target_p50_ms": 50,
        "target_met": main_list["p50_ms"] < 50 and q10 == q200,
    }
    write_result("run_list", figures)


if __name__ == "__main__":
    main()
