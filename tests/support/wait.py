"""Polling for effects that happen in another process (a Celery worker, a subprocess)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ObjectDoesNotExist

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (ObjectDoesNotExist,),
    message: str | None = None,
) -> T:
    """Call `predicate` until it returns something truthy, and return that; fail after `timeout`.

    Each call must query afresh (`Run.objects.get(pk=pk)`, `qs.exists()`, `obj.refresh_from_db()`
    then a check) rather than look at an instance fetched before: the worker commits from another
    connection and only a new query sees it. Exceptions in `ignore` (by default `DoesNotExist`)
    count as "not yet", so `wait_for(lambda: Organization.objects.get(slug="x"))` returns the row.

        run = wait_for(lambda: Run.objects.get(pk=pk, status="succeeded"), timeout=20)
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            last_error = None
        except ignore as exc:
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            detail = f" (last: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)
