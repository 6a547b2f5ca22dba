"""Every file the tool writes by default is tracked on purpose or git-ignored, never left untracked."""

import subprocess

import pytest

from bench.common import paths
from bench.perf import gpu_check
from bench.perf.model import modes
from bench.report import readme
from bench.robustness import command as robustness

TRACKED = (
    paths.RESULTS_CSV,
    paths.RESULTS_CSV.with_suffix(".md"),
    paths.RESULTS_DIR / readme.PLOT_NAME,
    paths.RESULTS_DIR / readme.LEADERBOARD_PLOT_NAME,
    paths.README,
)
IGNORED = (
    paths.PROJECT_ROOT / robustness.DEFAULT_CSV,
    modes.PERF_CSV,
    gpu_check.DEFAULT_OUT.with_suffix(".json"),
    gpu_check.DEFAULT_OUT.with_suffix(".md"),
    paths.RUNS_DIR / "some-run" / "eval.json",
    paths.CHECKPOINT_ROOT / "pspnet-cpu" / "ckpt.keras",
    paths.SYNTHETIC_ROOT / "leftImg8bit" / "val" / "x.png",
    paths.RESULTS_DIR / ".results.csv.lock",
)


def _git(*args):
    return subprocess.run(["git", *args], cwd=paths.PROJECT_ROOT, capture_output=True, text=True)


@pytest.fixture(autouse=True)
def _in_git():
    if _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")


@pytest.mark.parametrize("path", TRACKED, ids=lambda p: p.name)
def test_result_files_shown_by_the_readme_are_tracked(path):
    assert _git("ls-files", "--error-unmatch", str(path)).returncode == 0, path


@pytest.mark.parametrize("path", IGNORED, ids=lambda p: str(p.relative_to(paths.PROJECT_ROOT)))
def test_machine_specific_outputs_are_ignored(path):
    assert _git("check-ignore", "-q", "--no-index", str(path)).returncode == 0, path
