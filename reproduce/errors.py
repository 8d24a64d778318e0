"""The exceptions the CLI turns into one line and an exit code instead of a traceback."""


class UserError(Exception):
    """Bad input, a missing file or a wrong setting; the message names it and says what to do. Exit code 2."""


class Interrupted(Exception):
    """A stage stopped by a signal after saving a checkpoint; exit code 128 + the signal's number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
