"""Shared fixtures: small synthetic datasets generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.synthetic import generate


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train + 3 val frames at 64x128, seed 0 (a fraction of a second to make); treat it as read-only,
    copy it (shutil.copytree) before changing anything in it."""
    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    return generate(root, train=4, val=3, size=(64, 128), seed=0, workers=1)
