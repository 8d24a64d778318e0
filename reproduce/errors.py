"""The one exception type for user-facing failures: printed as one line, exit code 2."""


class UserError(Exception):
    """Bad input, a missing file or a wrong setting; the message names it and says what to do."""
