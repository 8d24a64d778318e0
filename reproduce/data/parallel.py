"""An ordered map over worker processes with a bounded number of tasks in flight (so memory stays bounded).

Results come back in task order whatever the number of workers, so what a pass writes does not depend on it.
Workers are spawned (not forked): the parent may hold torch or tokenizers threads that a fork would copy broken.
They never see SIGINT (a Ctrl-C reaches the whole terminal's process group): the parent alone stops, and leaving the
pool ends them (SIGTERM), so a stopped pass neither hangs nor prints a worker's traceback.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from reproduce.core.errors import signals_held

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")
IN_FLIGHT_PER_WORKER = 8  # deep enough that a long task at the head of the queue leaves no worker idle


def worker_count(configured: int | None) -> int:
    """``data.workers``, or every core this process may use."""
    if configured is not None:
        return configured
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ordered_map(fn: Callable[[T], R], tasks: Iterable[tuple[M, T]], workers: int, initializer: Callable[..., None],
                initargs: tuple[Any, ...] = ()) -> Iterator[tuple[M, R]]:
    """``(meta, fn(payload))`` for each ``(meta, payload)`` of ``tasks``, in order, on ``workers`` processes (in this
    one if 1); only payloads travel, and at most IN_FLIGHT_PER_WORKER tasks per worker are in flight."""
    if workers <= 1:
        initializer(*initargs)
        for meta, payload in tasks:
            yield meta, fn(payload)
        return
    with contextlib.ExitStack() as stack:
        with signals_held():  # the workers start with SIGINT blocked (a spawned process inherits the mask)
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers, initializer, initargs))
        pending: deque = deque()
        for meta, payload in tasks:
            pending.append((meta, pool.apply_async(fn, (payload,))))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                meta_, result = pending.popleft()
                yield meta_, result.get()
        while pending:
            meta_, result = pending.popleft()
            yield meta_, result.get()
