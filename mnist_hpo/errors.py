"""The one exception type a user sees: its message is the single line the CLI prints."""


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can fix.

    The message says what is wrong and what to do, in one line; the CLI prints it
    without a traceback and exits non-zero.
    """
