"""Celery tasks of the engine: thin wrappers that take ids, call the engine, stay idempotent."""

from __future__ import annotations

from celery import shared_task

from automations import engine, sweeps


@shared_task(name="automations.advance_run", ignore_result=True)
def advance_run(run_id: str) -> None:
    engine.run_advance_and_execute(run_id)


@shared_task(name="automations.execute_node", ignore_result=True, acks_late=True)
def execute_node(run_id: str, node_id: str, token: str) -> None:
    engine.node_execute(run_id, node_id, token)


@shared_task(name="automations.sweep_runs", ignore_result=True)
def sweep_runs() -> None:
    try:
        sweeps.sweep_stale_runs()
    finally:  # re-sending lost queued runs must not depend on the reaping succeeding
        sweeps.requeue_idle_queued_runs()


def schedule_advance(run_id: str, *, countdown: float = 0) -> None:
    advance_run.apply_async(args=[run_id], countdown=countdown or None)


def dispatch_node(run_id: str, node_id: str, token: str, task_id: str, timeout_s=None) -> None:
    """Enqueue one node attempt under the task id stored on the node (so it can be revoked);
    a node `timeout_s` becomes the task's soft time limit."""
    options = {"task_id": task_id}
    if timeout_s:
        options.update(soft_time_limit=timeout_s, time_limit=timeout_s + 30)
    execute_node.apply_async(args=[run_id, node_id, token], **options)


def revoke(task_ids: list[str]) -> None:
    """Revoke queued node tasks; a task already running is fenced out when it reports."""
    if task_ids:
        from config.celery import app

        app.control.revoke(task_ids)
