"""Atomic writes and the output-path check: a path that cannot be written is a UserError before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import atomic
from data.errors import UserError
from tests.filesystems import full_file_system


def test_writable_path_passes_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "new" / "deeper" / "scores.json"
    assert atomic.check_writable(target, "--json file") == target
    assert list(tmp_path.iterdir()) == []


def test_existing_file_may_be_replaced(tmp_path):
    (tmp_path / "scores.json").write_text("{}")
    atomic.check_writable(tmp_path / "scores.json", "--json file")


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda t: (t / "afile").write_text("x") and t / "afile" / "x.json", "is a file, not a folder"),
        (lambda t: (t / "afile").write_text("x") and t / "afile" / "a" / "b.json", "is a file, not a folder"),
        (lambda t: (t / "dir").mkdir() or t / "dir", "is a folder"),
        (lambda t: t / ("n" * 251 + ".json"), "256 bytes long"),
        (lambda t: t / ("d" * 300) / "x.json", "300 bytes long"),
        (
            lambda t: (t / "dangling").symlink_to(t / "nowhere") or t / "dangling" / "x.json",
            "broken symbolic",
        ),
    ],
    ids=[
        "under-a-file",
        "deep-under-a-file",
        "a-folder",
        "name-too-long",
        "folder-name-too-long",
        "dangling",
    ],
)
def test_unwritable_paths_are_named(tmp_path, make, needle):
    target = make(tmp_path)
    with pytest.raises(UserError, match=needle) as info:
        atomic.check_writable(target, "--json file", folder=False)
    assert str(target) in str(info.value) and "--json file" in str(info.value)


def test_system_path_under_a_file():
    with pytest.raises(UserError, match="/etc/hostname is a file"):
        atomic.check_writable("/etc/hostname/x", "--json file")


def test_full_file_system_is_refused_before_the_work(tmp_path):
    with full_file_system(tmp_path / "full") as full:
        with pytest.raises(UserError, match="no space left|No space left"):
            atomic.check_writable(full / "scores.json", "--json file")
        with pytest.raises(UserError, match="cannot write .*scores.json: No space left"):
            atomic.write_bytes(full / "scores.json", b"x" * 100_000)
        assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no temp file left


def test_longest_allowed_name_is_written_atomically(tmp_path):
    """A 255-byte name is legal; the temp and lock names next to it must stay within the limit too."""
    for length in (241, 245, 255):
        target = tmp_path / ("r" * (length - 5) + ".json")
        atomic.check_writable(target, "--json file")
        atomic.write_text(target, "{}\n")
        with atomic.locked(target):
            atomic.write_text(target, "{}\n\n")
        assert target.read_text() == "{}\n\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_write_refused_midway_raises_user_error_and_leaves_no_file(tmp_path):
    """A real write failure (file size limit: EFBIG) in a child process: a UserError, nothing half-written."""
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "from bench.common import atomic\n"
        "from data.errors import UserError\n"
        "try:\n"
        "    atomic.write_bytes(sys.argv[1], b'x' * 100_000)\n"
        "except UserError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n"
    )
    target = tmp_path / "big.bin"
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 2, done.stderr
    assert f"cannot write {target}: File too large" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_output_folders_may_exist_or_be_new_but_not_be_files(tmp_path):
    (tmp_path / "existing").mkdir()
    (tmp_path / "afile").write_text("x")
    assert atomic.check_writable(tmp_path / "existing", "--out folder", folder=True) == tmp_path / "existing"
    atomic.check_writable(tmp_path / "new" / "deeper", "--out folder", folder=True)
    with pytest.raises(UserError, match="afile is a file, not a folder"):
        atomic.check_writable(tmp_path / "afile", "--out folder", folder=True)
    with pytest.raises(UserError, match="afile is a file, not a folder"):
        atomic.check_writable(tmp_path / "afile" / "sub", "--out folder", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "existing"]
