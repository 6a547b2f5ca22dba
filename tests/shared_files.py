"""The shared real data (weights, real frames) beside the checkout: `<repo>/../shared`, or the folder named
by $CITYSCAPES_BENCH_SHARED. Tests that need a file skip, naming what to download, when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.paths import PROJECT_ROOT

SHARED_ENV = "CITYSCAPES_BENCH_SHARED"


def shared_dir() -> Path:
    return Path(os.environ.get(SHARED_ENV) or PROJECT_ROOT.parent / "shared")


def shared_file(relative: str, download: str) -> Path:
    """`shared_dir() / relative`, or skip the test saying where the file comes from."""
    path = shared_dir() / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: {download} (or set ${SHARED_ENV} to the folder that holds it)")
    return path
