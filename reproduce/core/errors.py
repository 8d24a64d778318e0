"""The exceptions the CLI turns into one line and an exit code instead of a traceback."""

import signal
from collections.abc import Callable
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


def inherited_handlers() -> dict[int, Any]:
    """The stop-signal handlers installed before the command (a launcher's, e.g. submitit's requeue)."""
    return {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}


def pass_on(exc: Interrupted, handlers: dict[int, Callable | Any]) -> None:
    """After the stage saved its checkpoint, the signal goes on to the launcher's handler, if it had one: submitit
    then requeues the job, which continues from that checkpoint."""
    handler = handlers.get(exc.signum)
    if callable(handler):
        handler(exc.signum, None)
