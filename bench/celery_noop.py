"""A no-op Celery task, the yardstick for the engine benchmark (imported by its workers)."""

from celery import shared_task


@shared_task(name="bench.noop", ignore_result=True)
def noop(i: int) -> int:
    return i
