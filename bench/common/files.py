"""Why a path that should be a file cannot be read as one, in words a user can act on: the harness's entry
point to the one path check (`data/files.py`, at the bottom layer so that dataset readers share it)."""

from __future__ import annotations

from data.files import (
    MAX_FILE_BYTES,
    check_file,
    content_digest,
    describe_kind,
    not_a_file,
    read_file,
    read_head,
    what_it_holds,
)

__all__ = [
    "MAX_FILE_BYTES",
    "check_file",
    "content_digest",
    "describe_kind",
    "not_a_file",
    "read_file",
    "read_head",
    "what_it_holds",
]
