"""`bench robustness`: the evaluator's numbers per unit, resumption after SIGKILL, workers and replicas.

A random tiny model (tests.tiny_model:tiny) on small synthetic frames: the numbers mean nothing, their
equality means everything. The reference for every scale-out test is one uninterrupted in-process sweep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
pytest.importorskip("imagecorruptions")

from bench.cli import main  # noqa: E402  (after the TensorFlow check)
from bench.common.paths import PROJECT_ROOT  # noqa: E402
from bench.robustness.plan import Unit  # noqa: E402
from bench.robustness.state import SweepFolder  # noqa: E402
from data.corruptions import corrupt, seed_for  # noqa: E402
from data.errors import UserError  # noqa: E402
from data.synthetic import generate  # noqa: E402

MODEL = "tests.tiny_model:tiny"
TIMEOUT = 300  # seconds a sweep process may take before the test kills it and fails
ENV = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
SCALE_UNITS = ("--corruptions", "gaussian_noise,contrast,fog,jpeg", "--severities", "1,2")  # 9 units


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


def sweep_args(checkpoint: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "robustness",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--csv",
        str(out.parent / f"{out.name}.csv"),
        "--no-progress",
        *extra,
    ]


def unit_sums(out: Path) -> dict[str, tuple]:
    """Every finished unit's sums, as the files hold them (exact integers and float reprs)."""
    manifest = json.loads((out / "manifest.json").read_text())
    folder = SweepFolder(out, manifest)
    sums = {}
    for corruption, severity in manifest["units"]:
        totals, _ = folder.load(Unit(corruption, severity))
        sums[f"{corruption}-{severity}"] = (
            totals.confusion.tolist(),
            totals.instances.classes,
            totals.instances.categories,
            totals.n_images,
        )
    return sums


def result_of(out: Path, unit: Unit):
    folder = SweepFolder(out, json.loads((out / "manifest.json").read_text()))
    return folder.load(unit)[0].result()


def evaluate_predictions(checkpoint: Path, root: Path, tmp: Path):
    """`bench predict` then `bench evaluate` on the written PNGs: the evaluator's own numbers."""
    assert main(["predict", "--checkpoint", str(checkpoint), "--dataset", str(root), "--out", str(tmp)]) == 0
    from bench.evaluation.evaluator import evaluate

    return evaluate(root, "val", tmp, workers=1)


@pytest.fixture(scope="module")
def swept(checkpoint, tiny_dataset, tmp_path_factory) -> Path:
    """fog and impulse noise at severity 2 on the 3 tiny frames, corrupted frames saved, 2 processes."""
    out = tmp_path_factory.mktemp("swept") / "sweep"
    saved = out.parent / "corrupted"
    args = sweep_args(
        checkpoint, tiny_dataset, out, "--corruptions", "fog,impulse_noise", "--severities", "2"
    )
    assert main([*args, "--save-corrupted", str(saved), "--workers", "2"]) == 0
    return out


def test_each_unit_is_what_bench_evaluate_scores_for_the_same_frames(
    checkpoint, tiny_dataset, swept, tmp_path
):
    clean = evaluate_predictions(checkpoint, tiny_dataset, tmp_path / "clean")
    ours = result_of(swept, Unit("clean", 0))
    assert np.array_equal(ours.confusion, clean.confusion) and ours.confusion.sum() > 0
    assert (ours.miou, ours.iiou, ours.category_miou) == (clean.miou, clean.iiou, clean.category_miou)
    # the saved fog frames as a dataset of their own: predicted and evaluated by the ordinary commands
    root = tmp_path / "fog2"
    (root / "leftImg8bit").mkdir(parents=True)
    (root / "leftImg8bit" / "val").symlink_to(swept.parent / "corrupted" / "fog" / "2")
    (root / "gtFine").symlink_to(tiny_dataset / "gtFine")
    fog = evaluate_predictions(checkpoint, root, tmp_path / "fog")
    ours = result_of(swept, Unit("fog", 2))
    assert np.array_equal(ours.confusion, fog.confusion)
    assert (ours.miou, ours.iiou) == (fog.miou, fog.iiou)
    assert not np.array_equal(ours.confusion, clean.confusion)  # the corruption changed the predictions
    # the saved frame is the corruption of the original with the frame's seed
    original = next((tiny_dataset / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
    key = original.name[: -len("_leftImg8bit.png")]
    saved = root / "leftImg8bit" / "val" / original.parent.name / original.name
    expected = corrupt(np.asarray(Image.open(original).convert("RGB")), "fog", 2, seed_for(key, "fog", 2))
    assert np.array_equal(np.asarray(Image.open(saved)), expected)


def test_the_report_gives_the_table_mpc_rpc_heat_map_and_csv_rows_once(
    checkpoint, tiny_dataset, swept, capsys
):
    import pandas as pd

    rows = pd.read_csv(swept.parent / f"{swept.name}.csv")
    assert list(rows["corruption"]) == ["clean", "impulse_noise", "fog", "mPC"]  # the protocol's order
    mious = {
        u: 100 * result_of(swept, Unit(u, s)).miou
        for u, s in [("clean", 0), ("impulse_noise", 2), ("fog", 2)]
    }
    mpc = (mious["fog"] + mious["impulse_noise"]) / 2
    assert rows["miou"].tolist()[:3] == pytest.approx(list(mious.values()), rel=1e-5)  # CSV keeps 6 digits
    assert rows["mpc"].tolist() == pytest.approx([mpc] * 4, rel=1e-5)
    assert rows["rpc"].tolist() == pytest.approx([100 * mpc / mious["clean"]] * 4, rel=1e-5)
    assert set(rows["protocol"]) == {"cityscapes-c"} and set(rows["seed"]) == {0}
    assert set(rows["corruption_package"]) == {"imagecorruptions-imaug==1.1.5"}
    table = (swept / "robustness.md").read_text()
    assert "| fog |" in table and "| impulse_noise |" in table and "mPC" in table
    with Image.open(swept / "robustness.png") as image:
        assert image.size == (800, 700)
    # the same command again: nothing recomputed, no rows appended twice
    capsys.readouterr()
    args = sweep_args(
        checkpoint, tiny_dataset, swept, "--corruptions", "fog,impulse_noise", "--severities", "2"
    )
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "0 unit(s), 0 frames" in printed and "already holds this sweep" in printed
    assert len(pd.read_csv(swept.parent / f"{swept.name}.csv")) == 4


def test_a_folder_of_another_sweep_or_of_other_files_is_refused(
    checkpoint, tiny_dataset, swept, tmp_path, capsys
):
    args = sweep_args(
        checkpoint, tiny_dataset, swept, "--corruptions", "fog,impulse_noise", "--severities", "2"
    )
    assert main([*args, "--seed", "1"]) == 2
    assert "holds a sweep with other settings (seed differ)" in capsys.readouterr().err
    assert main([*args[:-1], "3"]) == 2  # other severities: other units
    assert "units differ" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(sweep_args(checkpoint, tiny_dataset, other, "--corruptions", "fog", "--severities", "1")) == 2
    assert "already holds files but no manifest.json" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_a_unit_file_of_another_sweep_is_never_read_as_finished(
    checkpoint, tiny_dataset, swept, tmp_path, capsys
):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.json").write_text((swept / "manifest.json").read_text())
    (copy / "units").mkdir()
    data = json.loads((swept / "units" / "fog-2.json").read_text())
    data["manifest_sha256"] = "0" * 64
    (copy / "units" / "fog-2.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="is not a finished unit of this sweep"):
        result_of(copy, Unit("fog", 2))


# --- kill and resume, workers, replicas: fresh processes --------------------------------------------------


@pytest.fixture(scope="module")
def seven(tmp_path_factory) -> Path:
    """7 val frames (odd, so two replicas get a half-empty last call) at 64x128."""
    return generate(
        tmp_path_factory.mktemp("seven") / "root", train=0, val=7, size=(64, 128), seed=1, workers=1
    )


@pytest.fixture(scope="module")
def reference(checkpoint, seven, tmp_path_factory) -> Path:
    """One uninterrupted in-process sweep, corruptions made inline (no worker processes)."""
    out = tmp_path_factory.mktemp("reference") / "sweep"
    assert main([*sweep_args(checkpoint, seven, out, *SCALE_UNITS), "--workers", "1"]) == 0
    return out


def sweep_process(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with log.open("w") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", *argv],
            cwd=PROJECT_ROOT,
            env=env or ENV,
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def finish(process: subprocess.Popen, log: Path) -> str:
    try:
        code = process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    return text


@pytest.mark.slow
def test_a_sweep_killed_mid_way_resumes_to_the_numbers_of_an_uninterrupted_one(
    checkpoint, seven, reference, tmp_path, capsys
):
    out = tmp_path / "sweep"
    argv = [*sweep_args(checkpoint, seven, out, *SCALE_UNITS), "--workers", "2"]
    process = sweep_process(argv, tmp_path / "first.log")
    deadline = time.monotonic() + TIMEOUT
    units = out / "units"
    while not (units.is_dir() and len(list(units.glob("*.json"))) >= 2):
        assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no unit finished in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    finished = sorted(p.name for p in units.glob("*.json"))
    assert 2 <= len(finished) < 9, f"the sweep was not killed mid-way: {finished}"
    capsys.readouterr()
    assert main(argv) == 0  # resumed in this process
    assert f"{9 - len(finished)} unit(s)" in capsys.readouterr().out
    assert unit_sums(out) == unit_sums(reference)
    assert (out / "robustness.md").read_text() == (reference / "robustness.md").read_text()
    assert (out / "frames.csv").read_text() == (reference / "frames.csv").read_text()  # per frame too


def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_tf_config_workers_give_exactly_the_numbers_of_one_process(
    checkpoint, seven, reference, tmp_path
):
    out = tmp_path / "sweep"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes, logs = [], []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        logs.append(tmp_path / f"worker{index}.log")
        argv = [*sweep_args(checkpoint, seven, out, *SCALE_UNITS), "--workers", "1"]
        processes.append(sweep_process(argv, logs[-1], ENV | {"TF_CONFIG": json.dumps(config)}))
    texts = [finish(p, log) for p, log in zip(processes, logs, strict=True)]
    assert "worker 1 done" in texts[1] and "robustness.md" not in texts[1]
    assert "wrote" in texts[0] and (out / "robustness.md").is_file()
    # Each worker takes its own share first, then any unit nobody holds: a worker that starts late may find
    # every unit taken (work stealing), so who computed which unit is timing, not a result.
    computed_by = {json.loads(p.read_text())["worker"] for p in (out / "units").glob("*.json")}
    assert computed_by <= {0, 1} and computed_by
    assert unit_sums(out) == unit_sums(reference)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_gives_exactly_the_numbers_of_one_replica(
    checkpoint, seven, reference, tmp_path
):
    out = tmp_path / "sweep"
    argv = [*sweep_args(checkpoint, seven, out, *SCALE_UNITS), "--workers", "1", "--cpu-replicas", "2"]
    text = finish(sweep_process(argv, tmp_path / "mirrored.log"), tmp_path / "mirrored.log")
    assert "mirrored strategy, 2 replica(s)" in text
    assert unit_sums(out) == unit_sums(reference)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--corruptions", "zoom_blur"], "unknown corruption 'zoom_blur'"),
        (["--corruptions", "fog,fog"], "names a corruption twice"),
        (["--severities", "7"], "severities are 1 to 5"),
        (["--corruptions", "shot_noise", "--severities", "4,5"], "shot_noise has severities 1,2,3 only"),
        (["--limit", "0"], "--limit 0 must be at least 1"),
        (["--seed", "-1"], "--seed -1 must be a non-negative integer"),
        (["--workers", "0"], "--workers 0 must be at least 1"),
        (["--cpu-replicas", "0"], "--cpu-replicas 0 must be at least 1"),
        (["--cpu-replicas", "2", "--mode", "slide"], "--mode slide runs on one replica"),
        (["--scales", "0.5,1"], "--scales applies to --mode multiscale only"),
    ],
)
def test_bad_options_are_clear_errors_before_any_work(
    checkpoint, tiny_dataset, tmp_path, capsys, extra, message
):
    out = tmp_path / "sweep"
    assert main([*sweep_args(checkpoint, tiny_dataset, out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "units").exists()


def test_a_broken_csv_or_a_file_as_out_is_refused_before_any_work(checkpoint, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "sweep"
    csv_path = tmp_path / "results.csv"
    csv_path.write_text("model,miou\npspnet,70\n")
    args = sweep_args(checkpoint, tiny_dataset, out, "--corruptions", "fog", "--severities", "1")
    assert main([*args, "--csv", str(csv_path)]) == 2
    assert "is not a robustness CSV written by `bench robustness`" in capsys.readouterr().err
    assert not out.exists() and csv_path.read_text() == "model,miou\npspnet,70\n"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(sweep_args(checkpoint, tiny_dataset, afile, "--corruptions", "fog")) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(sweep_args(tmp_path / "missing.keras", tiny_dataset, out)) == 2
    assert "missing.keras does not exist" in capsys.readouterr().err


def test_inference_settings_are_the_prediction_loops_own(checkpoint, tiny_dataset, tmp_path):
    """--mode slide --flip: the clean unit equals `bench predict` with the same options, and the manifest
    names them (so a sweep with other settings is never resumed into this one)."""
    mode = ["--mode", "slide", "--crop", "48x64", "--flip"]
    out = tmp_path / "sweep"
    args = sweep_args(checkpoint, tiny_dataset, out, "--corruptions", "contrast", "--severities", "1", *mode)
    assert main([*args, "--workers", "1"]) == 0
    preds = tmp_path / "preds"
    argv = ["predict", "--checkpoint", str(checkpoint), "--dataset", str(tiny_dataset), "--out", str(preds)]
    assert main([*argv, *mode]) == 0
    from bench.evaluation.evaluator import evaluate

    expected = evaluate(tiny_dataset, "val", preds, workers=1)
    assert np.array_equal(result_of(out, Unit("clean", 0)).confusion, expected.confusion)
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert (settings["mode"], settings["crop"], settings["flip"]) == ("slide", [48, 64], True)


def test_the_sweep_keeps_the_ground_truth_where_gt_cache_says(checkpoint, tiny_dataset, tmp_path):
    from bench.evaluation.gt_cache import SUFFIX

    cache = tmp_path / "gt-cache"
    for name, option in (("uncached", ["--no-gt-cache"]), ("cached", ["--gt-cache", str(cache)])):
        args = sweep_args(
            checkpoint, tiny_dataset, tmp_path / name, "--corruptions", "fog", "--severities", "1"
        )
        assert main([*args, "--workers", "1", *option]) == 0
        assert len(list(cache.glob(f"*{SUFFIX}"))) == (0 if name == "uncached" else 3)


def test_a_unit_restored_from_disk_keeps_its_frames_and_a_resumed_sweep_writes_the_same_frames_csv(
    checkpoint, tiny_dataset, swept, tmp_path, capsys
):
    import shutil

    clean = evaluate_predictions(checkpoint, tiny_dataset, tmp_path / "clean")
    restored = result_of(swept, Unit("clean", 0))
    assert restored.frames is not None and restored.frames.keys == clean.frames.keys
    assert np.array_equal(restored.frames.confusion, clean.frames.confusion)
    text = (swept / "frames.csv").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("corruption,severity,frame,city,valid_pixels")
    assert len(lines) == 1 + 3 * 3  # 3 units x 3 frames
    assert [line[len("clean,0,") :] for line in lines[1:4]] == clean.frames.csv_text().splitlines()[1:]
    # one unit lost (as a kill before it was saved leaves it): recomputed, the same per-frame rows
    copy = tmp_path / "copy"
    shutil.copytree(swept, copy)
    (copy / "units" / "fog-2.json").unlink()
    (copy / "frames.csv").unlink()
    units = ("--corruptions", "fog,impulse_noise", "--severities", "2")
    args = sweep_args(checkpoint, tiny_dataset, copy, *units)
    capsys.readouterr()
    assert main(args) == 0
    assert "1 unit(s)" in capsys.readouterr().out
    assert (copy / "frames.csv").read_text() == text
