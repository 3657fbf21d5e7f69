"""No-op Celery tasks, the yardsticks of the engine benchmark (imported by its workers).

`noop` does nothing; `noop_count` does nothing but count itself in Redis, so the benchmark can
tell when the last task of a canvas chain of no-ops has run (the workers keep no results).
"""

import os

import redis
from celery import shared_task

COUNTER = "bench:noop-chains-done"


@shared_task(name="bench.noop", ignore_result=True)
def noop(i: int) -> int:
    return i


@shared_task(name="bench.noop_count", ignore_result=True)
def noop_count(i: int) -> int:
    redis.Redis.from_url(os.environ["REDIS_URL"]).incr(COUNTER)
    return i
