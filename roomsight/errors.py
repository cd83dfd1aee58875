"""The one exception base the command line treats as the user's to fix: it prints the message and
exits 1. Anything else is a bug and keeps its traceback. Also how such a message quotes a library's error."""


class UserError(Exception):
    """Bad input, configuration or state, with a message that says what to do."""


def first_line(exc: BaseException) -> str:
    """A library's error message cut to its first line, for a one-line UserError that quotes it."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
