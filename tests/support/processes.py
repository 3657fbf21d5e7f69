"""Running code in a process of its own, for claims about code that would hold the GIL (a
backtracking regular expression) and so stall a thread of the test itself."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable


def finishes_within(target: Callable[[], None], seconds: float) -> bool:
    """Whether `target`, run in a forked process, returns without an error within `seconds`
    (the process is killed otherwise). Close the test's database connection first: the child
    must open its own."""
    child = multiprocessing.get_context("fork").Process(target=target)
    child.start()
    child.join(timeout=seconds)
    if child.exitcode is None:
        child.kill()
        child.join()
        return False
    return child.exitcode == 0
