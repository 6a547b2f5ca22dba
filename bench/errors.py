"""The one exception type the CLI turns into a clean message and a non-zero exit."""


class UserError(Exception):
    """Bad input or a failed precondition; the message names the file and the fix."""
