"""Why a path that should be a file cannot be read as one, in words a user can act on."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def not_a_file(path: Path, what: str = "checkpoint") -> str:
    """Why `path` cannot be read as a file, and the fix (for a path where `is_file()` is False)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return f"{what} {path} is a broken symbolic link (to {os.readlink(path)}): point it at the file"
        return f"{what} {path} does not exist"
    except OSError as exc:
        return f"{what} {path} cannot be opened ({exc.strerror}): give the file itself"
    kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or device)"
    return f"{what} {path} is {kind}: give the file itself"
