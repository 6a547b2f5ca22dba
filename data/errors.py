"""The one user-error type, at the bottom layer so that `data`, `models` and `bench` can all raise it.

The CLI catches this type alone and turns it into a message and exit 2; `DatasetError` and `RegistryError`
derive from it.
"""


class UserError(Exception):
    """Bad input or a failed precondition; the message names the file and the fix."""
