"""Column-parallel execution for large tables.

numpy releases the GIL inside its loops, so independent columns (outlier tests,
normalisation) and independent aggregates can use every core through threads
without copying data.  Small tables run serially: threads only pay off above
about a million cells, and only when each task is large (on short columns the
numpy calls are so brief that the threads spend their time handing the GIL to
each other).  Results do not depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MIN_CELLS = 1_000_000
#: Fewest cells per task (on average) for threads to be used.
MIN_TASK_CELLS = 200_000


def workers() -> int:
    """Threads to use: ``$STABILITY_THREADS`` or the number of cores."""
    env = os.environ.get("STABILITY_THREADS")
    if env:
        return max(1, int(env))
    return os.cpu_count() or 1


def map_ordered(fn: Callable[[T], R], items: Iterable[T], cells: int) -> list[R]:
    """``[fn(x) for x in items]``, on threads when ``cells`` (the work size) is large."""
    items = list(items)
    return run_all([lambda x=x: fn(x) for x in items], cells)


def run_all(tasks: list[Callable[[], R]], cells: int) -> list[R]:
    """Run independent tasks (concurrently when ``cells`` is large); results in order."""
    n = min(workers(), len(tasks))
    if n <= 1 or cells < MIN_CELLS or cells < MIN_TASK_CELLS * len(tasks):
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]
