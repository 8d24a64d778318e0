"""An ordered map over worker processes with a bounded number of tasks in flight (so memory stays bounded).

Results come back in task order whatever the number of workers, so what a pass writes does not depend on it.
Workers are not forked from the parent (it may hold torch or tokenizers threads that a fork would copy broken) but
from a fork server (``start_server``), a clean interpreter started once with SIGINT ignored, so they ignore it from
their first instruction (a Ctrl-C reaches the whole terminal's process group): the parent alone stops, and leaving the
pool ends them (SIGTERM) and waits for them. A stop that comes while the pool starts them waits until every worker is
in the pool (``signals_held``): a worker started but not yet in it would outlive the parent and print
multiprocessing's traceback once the pool's semaphores are gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from reproduce.core.errors import signals_held

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M")
IN_FLIGHT_PER_WORKER = 8  # deep enough that a long task at the head of the queue leaves no worker idle
_SERVER_PIDS: list[int] = []  # the process that started the fork server (a worker's copy is not it)
_FAILED: list[BaseException] = []  # in a worker: what its initializer raised (reported by its first task)


def start_server() -> Any:
    """Workers forked from a server process started (once, with SIGINT ignored) from this clean interpreter: they
    ignore SIGINT from their first instruction, as the server does (a spawned worker took a Ctrl-C while its
    interpreter was still starting and printed KeyboardInterrupt's traceback: spawn resets the blocked mask). Called
    before a command's work, since a Ctrl-C in the moment the server starts goes unseen."""
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    if _SERVER_PIDS != [os.getpid()]:  # its first start in this process: a moment in which a Ctrl-C goes unseen
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server inherits it ignored; its forks keep that
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)
        _SERVER_PIDS[:] = [os.getpid()]
    return context


def _start(initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """A worker's start: SIGINT ignored (a terminal's Ctrl-C is the parent's to handle: it ends the workers),
    SIGTERM at its default (the pool ends workers with it, even where the parent had it ignored), then the pass's
    initializer; what that raises is kept for the first task to raise in the parent, not printed here (a pool
    whose initializer fails restarts the worker forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        initializer(*initargs)
    except Exception as exc:
        _FAILED.append(exc)


def _call(fn: Callable[[T], R], payload: T) -> R:
    if _FAILED:
        raise _FAILED[0]
    return fn(payload)


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
        with signals_held():  # no stop half-way through starting them: one would leave a worker no pool ends
            pool = stack.enter_context(start_server().Pool(workers, _start, (initializer, initargs)))
        pending: deque = deque()
        for meta, payload in tasks:
            pending.append((meta, pool.apply_async(_call, (fn, payload))))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                meta_, result = pending.popleft()
                yield meta_, result.get()
        while pending:
            meta_, result = pending.popleft()
            yield meta_, result.get()
