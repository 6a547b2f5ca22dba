# ruff: noqa: E501  (the case tables read best one case per line)
"""Hostile files and senseless numbers met through the commands: predictions, ground truth and GT cache
entries that are FIFOs, devices, link loops or decompression bombs (`bench evaluate`), checkpoints that are
no regular file or hold something else than their extension says (`bench predict`, `bench convert`), and
Boundary IoU ratios out of range. Every failing case exits 2 with a message naming the file or option, no
traceback, no hang, and leaves its folder as it was (compared without opening pipes or devices)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main as bench_main
from tests.cityscapes_files import write_dataset
from tests.test_bad_inputs import KEYS, Case, _ev, eval_data, gt_file, pred_file
from tests.test_bad_inputs_mechanisms import BOMBS, _png_header

ROOT = os.geteuid() == 0


@pytest.fixture
def case_folder(tmp_path: Path) -> Path:
    return tmp_path


def safe_snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under folder: kind, size, mode, mtime; pipes and devices are never opened."""
    state = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        state[str(path.relative_to(folder))] = (
            st.st_mode,
            st.st_size if path.is_file() else 0,
            st.st_mtime_ns,
        )
    return state


def run_case(case: Case, folder: Path, capsys, monkeypatch) -> str:
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    monkeypatch.chdir(folder)
    argv = case.setup(folder)
    capsys.readouterr()
    before = safe_snapshot(folder)
    try:
        code = bench_main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text, text
    assert code == case.code, text
    assert re.search(case.expect, text), (case.expect, text)
    if case.code != 0:
        assert safe_snapshot(folder) == before, "a failed command changed its folder"
    if case.check is not None:
        case.check(folder)
    return text


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def _loop(path: Path) -> None:
    path.unlink()
    path.symlink_to(path)


def _bomb(path: Path, name: str = "100k-square-grey") -> None:
    path.write_bytes(BOMBS[name])


def _scores(folder: Path) -> None:
    data = json.loads((folder / "r.json").read_text())
    assert data["nImages"] == 2 and data["averageScoreClasses"] == 1.0


EVALUATE_CASES = [
    Case("pred-fifo", _ev(lambda f: _fifo(pred_file(f))), r"cannot read prediction .*leftImg8bit.png: it is a FIFO"),
    Case("pred-fifo-in-a-worker", _ev(lambda f: _fifo(pred_file(f, KEYS[1])), workers="2"), r"lindau_000001_000019_leftImg8bit.png: it is a FIFO"),
    Case("pred-dev-zero-behind-a-link", _ev(lambda f: _dev_zero(pred_file(f))), r"prediction .*leftImg8bit.png: it is a character device"),
    Case("pred-link-loop", _ev(lambda f: _loop(pred_file(f))), r"cannot read prediction .*: Too many levels of symbolic links \(a symbolic link loop\)"),
    Case("pred-bomb", _ev(lambda f: _bomb(pred_file(f))), r"prediction .*leftImg8bit.png declares 100000x100000 pixels .*decompression bomb"),
    Case("pred-bomb-wide-strip", _ev(lambda f: _bomb(pred_file(f), "wide-strip")), r"declares 2147483647x1 pixels"),
    Case("pred-bomb-palette", _ev(lambda f: _bomb(pred_file(f), "palette-above-budget")), r"declares 40000x40000 pixels"),
    Case("pred-zero-pixels", _ev(lambda f: pred_file(f).write_bytes(_png_header(0, 64))), r"declares 0x64 pixels \(an empty image\)"),
    Case("gt-labels-fifo", _ev(lambda f: _fifo(gt_file(f))), r"cannot read ground truth .*labelIds.png: it is a FIFO"),
    Case("gt-labels-fifo-without-cache", _ev(lambda f: _fifo(gt_file(f)), "--no-gt-cache"), r"labelIds.png: it is a FIFO"),
    Case("gt-instances-dev-zero", _ev(lambda f: _dev_zero(gt_file(f, kind="instanceIds"))), r"instance ground truth .*instanceIds.png: it is a character device"),
    Case("gt-labels-bomb", _ev(lambda f: _bomb(gt_file(f))), r"ground truth .*labelIds.png declares 100000x100000 pixels"),
    Case("gt-instances-bomb-16-bit", _ev(lambda f: _bomb(gt_file(f, kind="instanceIds"), "16-bit-above-budget")), r"instanceIds.png declares 20000x20000 pixels"),
    Case("boundary-ratio-inf", _ev(lambda f: None, "--boundary-ratio", "inf"), r"--boundary-ratio: inf is out of range: give a number above 0 and at most 0.5"),
    Case("boundary-ratio-huge", _ev(lambda f: None, "--boundary-ratio", "1e300"), r"--boundary-ratio: 1e300 is out of range"),
    Case("boundary-ratio-nan", _ev(lambda f: None, "--boundary-ratio", "nan"), r"--boundary-ratio: nan is out of range"),
    Case("boundary-ratio-zero", _ev(lambda f: None, "--boundary-ratio", "0"), r"above 0 and at most 0.5"),
    Case("boundary-ratio-words", _ev(lambda f: None, "--boundary-ratio", "wide"), r"'wide' is not a number above 0"),
    Case("boundary-ratio-at-the-top-is-scored", _ev(lambda f: None, "--boundary-ratio", "0.5", "--json", "r.json"), r"2 images", code=0, check=_scores),
]  # fmt: skip


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=[c.id for c in EVALUATE_CASES])
def test_evaluate_reads_no_hostile_file(case: Case, case_folder: Path, capsys, monkeypatch) -> None:
    run_case(case, case_folder, capsys, monkeypatch)


def test_boundary_ratio_range_is_in_the_help(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_main(["evaluate", "--help"])
    assert "above 0 and at most 0.5" in capsys.readouterr().out.replace("\n", " ").replace("  ", " ")


# ---------------------------------------------------------------- the GT cache: a bad entry is a miss
def _cache_entries(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "cache").rglob("*") if not p.name.startswith(".") and p.is_file())


ENTRY_FAULTS: dict[str, Callable[[Path], None]] = {
    "fifo": lambda p: (p.unlink(), os.mkfifo(p)),
    "dev-zero-link": lambda p: (p.unlink(), p.symlink_to("/dev/zero")),
    "folder": lambda p: (p.unlink(), p.mkdir()),
    "link-loop": lambda p: (p.unlink(), p.symlink_to(p)),
}


@pytest.mark.parametrize("fault", ENTRY_FAULTS)
def test_a_cache_entry_that_is_no_file_is_a_miss_and_the_scores_are_exact(
    fault: str, case_folder: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(case_folder)
    eval_data(case_folder)
    argv = [
        "evaluate",
        "--gt",
        "gt",
        "--pred",
        "pred",
        "--workers",
        "1",
        "--gt-cache",
        "cache",
        "--json",
        "r.json",
    ]
    assert bench_main(argv) == 0
    entries = _cache_entries(case_folder)
    assert len(entries) == 2
    for entry in entries:
        ENTRY_FAULTS[fault](entry)
    (case_folder / "r.json").unlink()
    capsys.readouterr()
    code = bench_main(argv)
    text = "".join(capsys.readouterr())
    assert code == 0 and "Traceback" not in text, text
    _scores(case_folder)


# ---------------------------------------------------------------- checkpoints: kind and contents
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ds") / "ds", train=1, val=1, size=(32, 64), seed=1)


def _png_bytes() -> bytes:
    from bench.evaluation.png import encode_png

    return encode_png(np.zeros((8, 8), np.uint8))


CHECKPOINTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "tflite-holding-a-png": (
        lambda f: _put(f / "m.tflite", _png_bytes()),
        r"m.tflite is not a readable .tflite file: it holds a PNG image",
    ),
    "keras-holding-a-png": (
        lambda f: _put(f / "m.keras", _png_bytes()),
        r"m.keras is not a readable .keras file: it holds a PNG image",
    ),
    "keras-holding-a-tflite": (
        lambda f: _put(f / "m.keras", b"\x1c\0\0\0TFL3" + b"\0" * 64),
        r"it holds a LiteRT \(.tflite\) model",
    ),
    "pth-holding-a-jpeg": (
        lambda f: _put(f / "m.pth", b"\xff\xd8\xff\xe0" + b"\0" * 64),
        r"m.pth is not a readable .pth file: it holds a JPEG image",
    ),
    "tflite-holding-hdf5": (
        lambda f: _put(f / "m.tflite", b"\x89HDF\r\n\x1a\n" + b"\0" * 64),
        r"it holds an HDF5 file",
    ),
    "keras-fifo": (lambda f: _mk(f / "m.keras", os.mkfifo), r"checkpoint .*m.keras is a FIFO"),
    "tflite-dev-zero": (
        lambda f: _mk(f / "m.tflite", lambda p: p.symlink_to("/dev/zero")),
        r"m.tflite is a character device",
    ),
    "pth-link-loop": (
        lambda f: _mk(f / "m.pth", lambda p: p.symlink_to(p)),
        r"m.pth is a symbolic link loop",
    ),
    "keras-dangling": (
        lambda f: _mk(f / "m.keras", lambda p: p.symlink_to(f / "gone.keras")),
        r"m.keras is a broken symbolic link",
    ),
}


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mk(path: Path, make: Callable[[Path], object]) -> Path:
    make(path)
    return path


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_predict_names_a_checkpoint_for_what_it_is(
    name: str, dataset: Path, case_folder: Path, capsys
) -> None:
    make, expect = CHECKPOINTS[name]
    checkpoint = make(case_folder)
    before = safe_snapshot(case_folder)
    code = bench_main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--dataset",
            str(dataset),
            "--out",
            str(case_folder / "out"),
            "--no-progress",
        ]
    )
    text = "".join(capsys.readouterr())
    assert code == 2 and "Traceback" not in text, text
    assert re.search(expect, text), text
    assert safe_snapshot(case_folder) == before


CONVERT_SOURCES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "folder": (lambda f: _mk(f / "src.pth", Path.mkdir), r"checkpoint .*src.pth is a folder"),
    "link-loop": (
        lambda f: _mk(f / "src.pth", lambda p: p.symlink_to(p)),
        r"src.pth is a symbolic link loop",
    ),
    "dangling": (
        lambda f: _mk(f / "src.pth", lambda p: p.symlink_to(f / "gone.pth")),
        r"src.pth is a broken symbolic link",
    ),
    "fifo": (lambda f: _mk(f / "src.pth", os.mkfifo), r"src.pth is a FIFO"),
    "png": (lambda f: _put(f / "src.pth", _png_bytes()), r"src.pth is not a PyTorch checkpoint"),
}


@pytest.mark.parametrize("name", CONVERT_SOURCES)
def test_convert_names_its_source_for_what_it_is(name: str, case_folder: Path, capsys) -> None:
    make, expect = CONVERT_SOURCES[name]
    src = make(case_folder)
    before = safe_snapshot(case_folder)
    code = bench_main(["convert", str(src), "--out", str(case_folder / "c.keras")])
    text = "".join(capsys.readouterr())
    assert code == 2 and "Traceback" not in text, text
    assert re.search(expect, text), text
    assert safe_snapshot(case_folder) == before


# ---------------------------------------------------------------- hostile .pth contents
def _zip_pth(path: Path, pickled: bytes) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", "little")
    return path


def _deep_nest(depth: int) -> bytes:
    """A pickle of a list nested `depth` deep, built without recursion: EMPTY_LIST x depth, APPEND x depth-1."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def _billion_laughs(levels: int) -> bytes:
    import pickle

    node: list = []
    for _ in range(levels):
        node = [node, node]  # shared: 2**levels leaves as a tree, `levels` lists as a graph
    return pickle.dumps({"state_dict": {"w": node}}, protocol=2)


def _truncated_zip(folder: Path) -> Path:
    from tests.torch_files import write_pth

    path = write_pth(folder / "src.pth", {"w": np.zeros((64, 64), np.float32)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


HOSTILE_PTH: dict[str, tuple[Callable[[Path], Path], str]] = {
    "200000-deep-nest": (lambda f: _zip_pth(f / "src.pth", _deep_nest(200_000)), r"nests containers more than 64 deep"),
    "65-deep-nest": (lambda f: _zip_pth(f / "src.pth", _deep_nest(66)), r"nests containers more than 64 deep"),
    "billion-laughs-40-levels": (lambda f: _zip_pth(f / "src.pth", _billion_laughs(40)), r"state dict entry 'w' is a list, not a tensor"),
    "truncated-zip": (_truncated_zip, r"src.pth is a truncated or damaged zip archive"),
}  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE_PTH)
def test_convert_refuses_a_hostile_pth_at_once(name: str, case_folder: Path, capsys) -> None:
    import time

    make, expect = HOSTILE_PTH[name]
    src = make(case_folder)
    began = time.perf_counter()
    code = bench_main(["convert", str(src), "--out", str(case_folder / "c.keras")])
    text = "".join(capsys.readouterr())
    assert code == 2 and "Traceback" not in text, text
    assert re.search(expect, text), text
    assert time.perf_counter() - began < 20
    assert not (case_folder / "c.keras").exists()
