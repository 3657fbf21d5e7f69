"""Celery tasks of the engine: thin wrappers that take ids, call the engine, stay idempotent.

They are published by name from `automations.scheduling` (never imported by the code that
schedules them); the names are declared there.
"""

from __future__ import annotations

from celery import shared_task
from structlog.contextvars import bound_contextvars

from automations import engine, fairness, scheduling
from automations.runs import sweeps


@shared_task(name=scheduling.ADVANCE_RUN, ignore_result=True)
def advance_run(run_id: str) -> None:
    with bound_contextvars(run_id=run_id):
        engine.run_advance_and_execute(run_id)


@shared_task(name=scheduling.EXECUTE_NODE, ignore_result=True, acks_late=True)
def execute_node(run_id: str, node_id: str, token: str) -> None:
    with bound_contextvars(run_id=run_id, node_id=node_id):
        engine.node_execute(run_id, node_id, token)


@shared_task(name=scheduling.SWEEP_RUNS, ignore_result=True)
def sweep_runs() -> None:
    try:
        sweeps.sweep_stale_runs()
    finally:  # re-sending lost queued runs must not depend on the reaping succeeding
        sweeps.requeue_idle_queued_runs()
        fairness.admit_waiting()  # backstop: admissions are made after each commit
    # Only a sweep that got through both parts proves beat and the sweep work (/readyz).
    sweeps.sweep_mark_completed(scheduling.SWEEP_RUNS)
