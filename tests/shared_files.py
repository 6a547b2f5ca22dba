"""The read-only shared data (real weights, real frames) that some tests use and the project never commits.

It lives in `shared/` beside the repository (`<repo>/../shared`, how CI lays it out) or in the folder that
$CITYSCAPES_BENCH_SHARED names. A test that needs a file absent here is skipped, the reason naming the file
and where it comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    return Path(os.environ.get("CITYSCAPES_BENCH_SHARED") or REPO.parent / "shared")


def shared_file(relative: str, source: str) -> Path:
    """`shared/<relative>`, or a skip saying what to download (`source`) and where to put it."""
    path = shared_root() / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: download {source} to it (or set CITYSCAPES_BENCH_SHARED)")
    return path
