# ruff: noqa: E501  (the case tables read best one case per line)
"""Faults beside the command line's own values: images that are no image (0 bytes, a folder, a FIFO, a broken
link: tests run as root, whom chmod 000 does not stop), `bench perf` arguments, two writers of one results
file, Ctrl-C at different moments, and `bench predict` killed outright and run again.

In-process where the behaviour allows (no TensorFlow for any image or perf case: each fails before it);
the SIGKILL case is real processes (marked slow).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.report.results import append_row, read_rows, row_from_result
from tests.cityscapes_files import evaluation_result, write_dataset

MODEL = "tests.tiny_model:tiny"
PROJECT = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture()
def ds(tmp_path) -> Path:
    return write_dataset(tmp_path / "ds", train=2, val=2, size=(32, 64), seed=3)


def _first_image(root: Path, split: str) -> Path:
    return sorted((root / "leftImg8bit" / split).rglob("*_leftImg8bit.png"))[0]


SPOILS: dict[str, tuple[Callable[[Path], object], str]] = {
    "zero-bytes": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "a-folder": (lambda p: (p.unlink(), p.mkdir()), "is a folder"),
    "a-fifo": (lambda p: (p.unlink(), os.mkfifo(p)), "is a FIFO (named pipe), not a regular file"),
    "broken-link": (lambda p: (p.unlink(), p.symlink_to(p.with_name("gone.png"))), "a broken symbolic link"),
    "link-loop": (lambda p: (p.unlink(), p.symlink_to(p)), "is a symbolic link loop"),
}
COMMANDS = {
    "train": (
        "train",
        lambda ds, t: (
            f"train --model {MODEL} --dataset {ds} --steps 1 --batch 1 --crop 32x32 --out {t}/out --no-progress"
        ),
    ),
    "predict": (
        "val",
        lambda ds, t: f"predict --checkpoint {t}/none.keras --dataset {ds} --out {t}/preds --no-progress",
    ),
    "perf-pipeline": ("train", lambda ds, t: f"perf pipeline --dataset {ds} --batch 1 --batches 1 --steps 1"),
    "perf-precision": ("val", lambda ds, t: f"perf precision --checkpoint {t}/none.keras --dataset {ds}"),
}
IMAGE_CASES = [(c, s) for c in COMMANDS for s in SPOILS]


@pytest.mark.parametrize(("command", "spoil"), IMAGE_CASES, ids=[f"{c}-image-{s}" for c, s in IMAGE_CASES])
def test_an_image_that_is_no_image_is_named_before_any_work(command, spoil, ds, tmp_path, capsys):
    split, argv = COMMANDS[command]
    image = _first_image(ds, split)
    make, needle = SPOILS[spoil]
    make(image)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = run_cli(argv(ds, tmp_path).split())
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert str(image) in err and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ------------------------------------------------------------------------------------------- bench perf
PERF_CASES = [
    (
        "perf-train-replicas-0",
        "perf train --replicas 0",
        "--per-replica-batch, --replicas and --steps must be at least 1",
    ),
    ("perf-train-replicas-negative", "perf train --replicas -3", "must be at least 1"),
    ("perf-train-batch-0", "perf train --per-replica-batch 0", "must be at least 1"),
    ("perf-train-steps-0", "perf train --steps 0", "must be at least 1"),
    ("perf-train-replicas-text", "perf train --replicas many", "invalid int value: 'many'"),
    ("perf-train-crop-text", "perf train --crop wide", "'wide' is not a size"),
    ("perf-train-crop-zero", "perf train --crop 0x8", "'0x8' is not a size"),
    (
        "perf-pipeline-batches-0",
        "perf pipeline --dataset {ds} --batches 0",
        "--batch, --batches and --steps must be at least 1",
    ),
    ("perf-pipeline-steps-negative", "perf pipeline --dataset {ds} --steps -1", "must be at least 1"),
    (
        "perf-precision-checkpoint-missing",
        "perf precision --checkpoint {t}/none.keras --dataset {ds}",
        "none.keras does not exist",
    ),
    (
        "perf-precision-limit-0",
        "perf precision --checkpoint {t}/none.keras --dataset {ds} --limit 0",
        "--limit 0 must be at least 1",
    ),
    (
        "perf-precision-no-checkpoint",
        "perf precision --dataset {ds}",
        "the following arguments are required: --checkpoint",
    ),
    (
        "perf-precision-split-empty",
        "perf precision --checkpoint {t}/none.keras --dataset {ds} --split test",
        "split 'test'",
    ),
    ("perf-no-target", "perf", "required: TARGET"),
    ("perf-unknown-target", "perf speed", "invalid choice: 'speed'"),
    ("perf-model-batch-negative", "perf model pspnet:tiny@64x64 --batch -1", "--batch -1"),
]


@pytest.mark.parametrize(("case", "argv", "needle"), PERF_CASES, ids=[c[0] for c in PERF_CASES])
def test_perf_bad_arguments(case, argv, needle, ds, tmp_path, capsys):
    code = run_cli(argv.format(ds=ds, t=tmp_path).split())
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert needle in err, err
    assert not (tmp_path / "none.keras").exists()


# ------------------------------------------------------------------------- two writers of one results file
def _append_rows(path: str, model: str, count: int) -> None:
    result = evaluation_result(0)
    for i in range(count):
        append_row(
            path,
            row_from_result(
                result,
                model=f"{model}-{i}",
                dataset="synthetic-v1",
                dataset_kind="synthetic",
                split="val",
                commit="c",
                date="2026-01-01T00:00:00Z",
            ),
        )


def test_two_writers_of_one_results_file_lose_no_row(tmp_path):
    """What two `bench run` at once do at their end (`run_benchmark` appends through `append_row`)."""
    path = tmp_path / "results.csv"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append_rows, args=(str(path), name, 15)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    models = sorted(read_rows(path)["model"])
    assert models == sorted([f"a-{i}" for i in range(15)] + [f"b-{i}" for i in range(15)])
    assert len(path.with_suffix(".md").read_text().splitlines()) >= 32  # the twin re-rendered whole
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


# ------------------------------------------------------------------------------- Ctrl-C at different moments
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "where",
    [
        "bench.common.atomic.os.replace",
        "bench.common.atomic.os.fsync",
        "bench.report.tables.render_results_markdown",
    ],
    ids=["ctrl-c-at-rename", "ctrl-c-at-fsync", "ctrl-c-while-rendering"],
)
def test_ctrl_c_while_appending_a_row_keeps_the_results_file_whole(where, tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    _append_rows(str(path), "old", 2)
    before = path.read_bytes()
    monkeypatch.setattr(where, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        _append_rows(str(path), "new", 1)
    monkeypatch.undo()
    text = path.read_bytes()
    assert text == before or list(read_rows(path)["model"]) == ["old-0", "old-1", "new-0"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_while_listing_the_dataset_exits_130_with_nothing_written(ds, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("data.cityscapes.check_image", _interrupt)
    code = run_cli(
        f"train --model {MODEL} --dataset {ds} --steps 1 --batch 1 --crop 32x32 --out {tmp_path}/out --no-progress".split()
    )
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- bench predict killed and rerun
@pytest.mark.slow
@pytest.mark.parametrize("moment", [0.0, 0.3], ids=["sigkill-at-start-up", "sigkill-mid-prediction"])
def test_predict_killed_outright_then_rerun_gives_the_clean_runs_outputs(moment, tmp_path):
    """bf16, --save-logits, --evaluate and --json at once, SIGKILLed, then run again: every output is the
    clean run's, byte for byte (PNGs, logits) or number for number (scores); no half-written file."""
    ds = write_dataset(tmp_path / "ds", train=2, val=3, size=(32, 64), seed=3)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    trained = tmp_path / "trained"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "train",
            "--model",
            MODEL,
            "--dataset",
            str(ds),
            "--steps",
            "1",
            "--batch",
            "1",
            "--crop",
            "32x32",
            "--out",
            str(trained),
            "--no-progress",
        ],
        cwd=PROJECT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )

    def predict(name: str) -> list[str]:
        out = tmp_path / name
        return [
            sys.executable,
            "-m",
            "bench",
            "predict",
            "--checkpoint",
            str(trained),
            "--dataset",
            str(ds),
            "--out",
            str(out / "preds"),
            "--precision",
            "bf16",
            "--save-logits",
            str(out / "logits"),
            "--evaluate",
            "--json",
            str(out / "scores.json"),
            "--no-progress",
        ]

    clean = subprocess.run(
        predict("clean"), cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert clean.returncode == 0, clean.stderr
    job = subprocess.Popen(
        predict("killed"), cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(5 + moment * 20)
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)
    for path in (tmp_path / "killed").rglob("*"):  # whatever the kill left: whole files only
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 60
    again = subprocess.run(
        predict("killed"), cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    for sub in ("preds", "logits"):
        names = sorted(p.name for p in (tmp_path / "clean" / sub).iterdir() if p.suffix in (".png", ".npy"))
        assert names == sorted(
            p.name for p in (tmp_path / "killed" / sub).iterdir() if p.suffix in (".png", ".npy")
        )
        for name in names:
            if name.endswith(".npy"):
                np.testing.assert_array_equal(
                    np.load(tmp_path / "clean" / sub / name), np.load(tmp_path / "killed" / sub / name)
                )
            else:
                assert (tmp_path / "clean" / sub / name).read_bytes() == (
                    tmp_path / "killed" / sub / name
                ).read_bytes()
    scores = [json.loads((tmp_path / run / "scores.json").read_text()) for run in ("clean", "killed")]
    assert scores[0]["averageScoreClasses"] == scores[1]["averageScoreClasses"] and scores[0]["nImages"] == 3
