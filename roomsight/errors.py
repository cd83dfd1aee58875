"""The one exception base the command line treats as the user's to fix: it prints the message and
exits 1. Anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Bad input, configuration or state, with a message that says what to do."""
