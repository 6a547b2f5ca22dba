"""Shared fixtures: small synthetic datasets generated once per test session."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.evaluation.gt_cache import ENV_VAR as GT_CACHE_ENV
from data.synthetic import generate

# A shell starts background jobs with SIGINT ignored (CI may run the suite so), an ignored signal stays
# ignored in every child, and Python then installs no KeyboardInterrupt handler: the Ctrl-C tests' children
# would never see their Ctrl-C. A handled signal is reset to its default by exec, so handling it here gives
# every child started by a test the Ctrl-C of a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# The longest files first (longest-processing-time-first scheduling): `make test` runs whole files on two
# xdist workers (--dist loadfile, --no-loadscope-reorder: xdist would order the files by their number of
# tests), and the file that takes a quarter of the suite, started late, would run on alone at the end.
# The other files keep their order.
LONGEST_FIRST = ("test_distribute.py", "test_bad_inputs_faults.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # a stable sort


@pytest.fixture(scope="session", autouse=True)
def private_gt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ground-truth cache of this test session: a temporary folder, never the user's ~/.cache (the
    variable is inherited by the CLI subprocesses tests start)."""
    folder = tmp_path_factory.mktemp("gt-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(GT_CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train + 3 val frames at 64x128, seed 0 (a fraction of a second to make); treat it as read-only,
    copy it (shutil.copytree) before changing anything in it."""
    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    return generate(root, train=4, val=3, size=(64, 128), seed=0, workers=1)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `tests.tiny_model:tiny` checkpoint with seeded random weights (with its aux head), made once per
    session for the tests that only need some model to predict with (read only)."""
    import keras

    from bench.sources import keras_checkpoint
    from models.registry import build

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.keras"
    model = "tests.tiny_model:tiny"
    return keras_checkpoint.save(build(model, aux_head=True), path, {"model": model, "num_classes": 19})
