"""The read-only shared data (real weights, real frames) that some tests use and the project never commits.

It lives in `shared/` beside the repository (`<repo>/../shared`, how CI lays it out) or in the folder that
$CITYSCAPES_BENCH_SHARED names. A test that needs a file absent here is skipped, the reason naming the file
and where it comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.common.paths import PROJECT_ROOT

SHARED_ENV = "CITYSCAPES_BENCH_SHARED"


def shared_dir() -> Path:
    return Path(os.environ.get(SHARED_ENV) or PROJECT_ROOT.parent / "shared")


def shared_file(relative: str, source: str) -> Path:
    """`shared_dir() / relative`, or skip the test naming the file and where it comes from (`source`)."""
    path = shared_dir() / relative
    if not path.exists():
        pytest.skip(
            f"{path} is absent: get it from {source} (or set ${SHARED_ENV} to the folder that holds it)"
        )
    return path
