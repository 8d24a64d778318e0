"""The exceptions the CLI turns into one line and an exit code instead of a traceback."""

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

# Preemption and requeue signals: SIGTERM (SLURM, torchrun), SIGUSR1 (sbatch --signal), SIGUSR2 (submitit).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class UserError(Exception):
    """Bad input, a missing file or a wrong setting; the message names it and says what to do. Exit code 2."""


class Differs(Exception):
    """A run's results differ from its reference beyond the seed spread; the results are kept. Exit code 3."""

    exit_code = 3


class Interrupted(Exception):
    """A stage stopped by a signal after saving a checkpoint; exit code 128 + the signal's number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum, self.exit_code = signum, 128 + signum


class Stopped(BaseException):
    """A command stopped by SIGINT or SIGTERM where it stood (``stop_on_signals``); exit code 128 + the signal's number.

    A BaseException, as KeyboardInterrupt is, so that no ``except Exception`` of a reader or a library takes it for a
    bad input; not a KeyboardInterrupt, which Lightning answers with exit code 1. Every ``finally`` on the way out runs:
    temporary names are removed, worker processes ended, locks released; what was already renamed into place is whole.
    """

    def __init__(self, signum: int):
        super().__init__(f"{signal.Signals(signum).name}; nothing half-written is kept: run the same command again to "
                         "do it over")
        self.signum, self.exit_code = signum, 128 + signum


USER_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and kill's, timeout's and a scheduler's stop


def _stop(signum: int, frame: Any) -> None:
    """Raise ``Stopped`` where the main thread is; a second signal while the first unwinds is ignored, so the
    clean-up it runs (temporaries, workers, locks) is not cut short."""
    for other in USER_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Every command, in one place: SIGINT and SIGTERM stop it within moments as ``Stopped`` (training replaces
    these handlers while it fits, to stop at a step boundary with a checkpoint). The handlers before are put back."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    # a signal ignored by whoever started us stays ignored (`cmd &` in a script ignores SIGINT; so does nohup's caller)
    before = {signum: handler for signum in USER_SIGNALS if (handler := signal.getsignal(signum)) != signal.SIG_IGN}
    for signum in before:
        signal.signal(signum, _stop)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_held(signums: tuple[int, ...] = (signal.SIGINT,)) -> Iterator[None]:
    """``signums`` blocked in this thread while the block runs (processes forked in it inherit the mask; spawned ones
    do not: multiprocessing's spawn resets it). In the main thread, SIGINT and SIGTERM are also held back from Python:
    blocking alone does not, since another thread (torch's, the tokenizers', a pool's) takes a signal the main thread
    blocks, and Python then runs the handler in the main thread wherever it stands, half-way through starting a
    worker that its pool then never ends. One that comes meanwhile is raised again at the block's end."""
    came: list[int] = []
    before: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in USER_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):  # an ignored or default disposition stays as it is
                before[signum] = signal.signal(signum, lambda s, _: came.append(s))
    signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signums)
        if came:
            signal.raise_signal(came[0])  # the handler put back takes it now


def printable(message: object) -> str:
    """A message as one line of visible text: a newline, a tab or another control character from a user's value
    (an override may hold any) is shown escaped, as ``repr`` shows it (found by tests/test_fuzz.py)."""
    text = str(message)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def inherited_handlers() -> dict[int, Any]:
    """The stop-signal handlers installed before the command (a launcher's, e.g. submitit's requeue); not ours."""
    return {signum: handler for signum in STOP_SIGNALS if (handler := signal.getsignal(signum)) is not _stop}


def pass_on(exc: Interrupted | Stopped, handlers: dict[int, Callable | Any]) -> None:
    """After the stage saved its checkpoint, the signal goes on to the launcher's handler, if it had one: submitit
    then requeues the job, which continues from that checkpoint."""
    handler = handlers.get(exc.signum)
    if callable(handler):
        handler(exc.signum, None)
