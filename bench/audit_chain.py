"""Audit chain throughput and verification speed.

Appends/s on ONE workspace chain from 8 concurrent writer processes (as web and worker processes
append in production), compared with the same transaction in plain psycopg; then verification
speed. Targets (SPEC §12): >= 2,000 appends/s with no gap or fork; verify >= 50,000 events/s.

Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python \
bench/audit_chain.py` (it creates its own database `flowgate_bench_audit`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from common import setup_django, write_result


def writer(workspace_id: int, n: int, appends: int, start, out) -> None:
    """One writer process: its own Django set-up and connection, `appends` transactions."""
    import django

    django.setup()
    from django.db import transaction

    from governance.actors import Actor
    from governance.audit import audit_record
    from governance.models import Workspace

    workspace = Workspace.objects.select_related("organization").get(pk=workspace_id)
    actor = Actor.system(workspace, "bench")
    latencies = []
    start.wait()
    for i in range(appends):
        began = time.perf_counter()
        with transaction.atomic():
            audit_record(
                workspace=workspace,
                event_type="bench.append",
                actor=actor,
                payload={"writer": n, "i": i, "note": "x" * 64},
            )
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def raw_writer(dsn: str, workspace_id: int, appends: int, start, out) -> None:
    """The same append transaction as plain psycopg (no Django): the machine's ceiling."""
    import hashlib
    import hmac

    import psycopg

    key = b"k" * 32
    with psycopg.connect(dsn) as conn:
        start.wait()
        for i in range(appends):
            with conn.transaction():
                seq, prev = conn.execute(
                    "UPDATE governance_auditchainhead SET seq = seq + 1, updated_at = now() "
                    "WHERE workspace_id = %s RETURNING seq, hash",
                    (workspace_id,),
                ).fetchone()
                digest = hmac.new(key, f"{seq}:{prev}:{i}".encode(), hashlib.sha256).hexdigest()
                conn.execute(
                    "WITH e AS (INSERT INTO governance_auditevent (workspace_id, seq, event_type, "
                    "actor_kind, actor_id, payload, created_at, prev_hash, hash, key_id) VALUES "
                    "(%s, %s, 'raw', 'system', 'bench', '{}', now(), %s, %s, 'raw')) "
                    "UPDATE governance_auditchainhead SET hash = %s WHERE workspace_id = %s",
                    (workspace_id, seq, prev, digest, digest, workspace_id),
                )
    out.put(appends)


def run_processes(target, args_for, writers: int) -> float:
    """Start `writers` processes, release them together, return the elapsed seconds."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(n), start, out)) for n in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join()
    return elapsed, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--appends", type=int, default=1000, help="per writer")
    parser.add_argument("--verify-events", type=int, default=100_000)
    args = parser.parse_args()
    setup_django("flowgate_bench_audit")

    from django.db import connection, transaction

    from governance.actors import Actor
    from governance.audit import audit_record, verify_chain
    from governance.models import AuditEvent
    from governance.services import workspace_create

    workspace, _ = workspace_create(path="bench/audit")
    actor = Actor.system(workspace, "bench")
    connection.close()
    elapsed, results = run_processes(
        writer, lambda n: (workspace.pk, n, args.appends), args.writers
    )
    latencies = sorted(x for batch in results for x in batch)
    total = args.writers * args.appends
    seqs = list(
        AuditEvent.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True)
    )
    contiguous = seqs == list(range(1, total + 1))

    # Grow the chain to --verify-events (single writer, batched in transactions) and verify it.
    remaining = max(0, args.verify_events - total)
    while remaining:
        with transaction.atomic():
            for _ in range(min(1000, remaining)):
                audit_record(
                    workspace=workspace,
                    event_type="bench.fill",
                    actor=actor,
                    payload={"i": remaining},
                )
                remaining -= 1
    started = time.perf_counter()
    result = verify_chain(workspace)
    verify_elapsed = time.perf_counter() - started

    raw_workspace, _ = workspace_create(path="bench/raw")
    connection.close()
    dsn = os.environ["DATABASE_URL"]
    raw_elapsed, _ = run_processes(
        raw_writer, lambda n: (dsn, raw_workspace.pk, args.appends), args.writers
    )

    write_result(
        "audit_chain",
        {
            "writers": args.writers,
            "appends": total,
            "appends_per_s": round(total / elapsed, 1),
            "append_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "append_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "contiguous_no_fork": contiguous,
            "raw_psycopg_appends_per_s": round(total / raw_elapsed, 1),
            "flowgate_vs_raw": round((total / elapsed) / (total / raw_elapsed), 2),
            "verify_events": result.events,
            "verify_ok": result.ok,
            "verify_events_per_s": round(result.events / verify_elapsed, 1),
        },
    )


if __name__ == "__main__":
    main()
