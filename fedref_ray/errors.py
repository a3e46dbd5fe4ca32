"""Errors that reach the user as one line and exit code 2 (no traceback)."""


class UserError(Exception):
    """A mistake in the user's input (config, override, data files, results folder).

    The message is one line naming the field or file, the value, and what is allowed.
    """
