# ruff: noqa: E501  (the case tables read best one case per line)
"""Senseless numbers and outputs that cannot be written, met through predict, run, train, perf eval,
submit and convert: each refused before any work with the option, the range or the path and the fix (exit
2, no traceback, nothing written), or computed right (`--temperature 0.25` used to raise StopIteration).
Full file systems are real (a 64 KiB tmpfs, tests/filesystems.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from shutil import which as shutil_which

import pytest

tf = pytest.importorskip("tensorflow")

from bench.cli import main  # noqa: E402
from bench.common.atomic import writing  # noqa: E402
from bench.sources import keras_checkpoint as ckpt  # noqa: E402
from data.errors import UserError  # noqa: E402
from tests.cityscapes_files import write_dataset  # noqa: E402
from tests.filesystems import full_file_system  # noqa: E402
from tests.test_bad_inputs_mechanisms import BOMBS  # noqa: E402

BOMB = BOMBS["100k-square-grey"]

MODEL = "tests.tiny_model:tiny"
UNWRITABLE = Path("/sys/kernel/bench-test")  # refused even to root: sysfs takes no new files


@pytest.fixture(scope="module")
def net():
    import keras

    from models.registry import build

    keras.utils.set_random_seed(0)
    return build(MODEL, aux_head=True)


@pytest.fixture(scope="module")
def checkpoint(net, tmp_path_factory) -> Path:
    return ckpt.save(net, tmp_path_factory.mktemp("ckpt") / "tiny.keras", {"model": MODEL, "num_classes": 19})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ds") / "ds", train=1, val=2, size=(32, 64), seed=1)


def snapshot(folder: Path) -> dict[str, tuple]:
    return {
        str(p): (p.lstat().st_mode, p.lstat().st_size if p.is_file() else 0)
        for p in sorted(folder.rglob("*"))
    }


def cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out + err


PREDICT = "predict --checkpoint {ckpt} --dataset {ds} --out {tmp}/preds --no-progress"
RUN = "run --checkpoint {ckpt} --model " + MODEL + " --dataset {ds} --no-readme --results {tmp}/results.csv"
TRAIN = (
    "train --model "
    + MODEL
    + " --dataset {ds} --steps 1 --batch 1 --crop 32x32 --out {tmp}/train --no-progress"
)

REFUSED = [
    ("predict-temperature-1e-300", PREDICT + " --evaluate --temperature 1e-300", r"--temperature: 1e-300 is out of range: give a number from 0.01 to 100"),
    ("predict-temperature-1e-320", PREDICT + " --evaluate --temperature 1e-320", r"--temperature: 1e-320 is out of range"),
    ("predict-temperature-inf", PREDICT + " --evaluate --temperature inf", r"--temperature: inf is out of range"),
    ("predict-boundary-ratio-inf", PREDICT + " --evaluate --boundary-ratio inf", r"--boundary-ratio: inf is out of range: give a number above 0 and at most 0.5"),
    ("predict-boundary-ratio-huge", PREDICT + " --evaluate --boundary-ratio 1e9", r"--boundary-ratio: 1e9 is out of range"),
    ("run-temperature-0.001", RUN + " --temperature 0.001", r"--temperature: 0.001 is out of range"),
    ("run-boundary-ratio-inf", RUN + " --boundary-ratio inf", r"--boundary-ratio: inf is out of range"),
    ("run-seeds-beyond-32-bit", RUN + " --seeds 0,4294967296", r"--seeds '0,4294967296': each seed is an integer from 0 to 4,294,967,295"),
    ("run-seed-beyond-32-bit", RUN + " --seed 4294967296", r"--seed: 4294967296 is out of range"),
    ("predict-stride-larger-than-crop", PREDICT + " --mode slide --crop 16x16 --stride 32x16", r"--stride 32x16 is larger than the crop 16x16: the pixels between two windows would get no logits"),
    ("predict-stride-larger-than-default-crop", PREDICT + " --mode slide --stride 800x800", r"larger than the crop 713x713"),
    ("predict-crop-beyond-the-pixel-budget", PREDICT + " --mode slide --crop 100000x100000", r"--crop: '100000x100000' is 9,536 Mpx, more than the pixel budget"),
    ("predict-save-logits-onto-a-file", PREDICT + " --save-logits {tmp}/afile", r"--save-logits folder .*afile is a file, not a folder"),
    ("predict-save-logits-unwritable", PREDICT + " --save-logits {unwritable}/logits", r"--save-logits folder .*cannot write in /sys/kernel"),
    ("predict-json-onto-a-folder", PREDICT + " --evaluate --json {tmp}/adir", r"--json file .*adir is a folder"),
    ("predict-json-under-a-file", PREDICT + " --evaluate --json {tmp}/afile/r.json", r"--json file .*afile is a file, not a folder"),
    ("train-val-limit-0", TRAIN + " --val-every 1 --val-limit 0", r"--val-limit: 0 is out of range: give an integer from 1 to 1,000,000"),
    ("train-val-limit-negative", TRAIN + " --val-every 1 --val-limit -1", r"--val-limit: -1 is out of range"),
    ("train-val-limit-without-val-every", TRAIN + " --val-limit 1", r"--val-limit 1 limits the validation of --val-every, which is off"),
    ("train-crop-beyond-the-pixel-budget", TRAIN.replace("32x32", "100000x100000"), r"--crop: '100000x100000' is 9,536 Mpx"),
    ("train-batch-too-large-for-memory", TRAIN.replace("--batch 1", "--batch 1000000"), r"--batch 1000000 x --crop 32x32 is 976 Mpx per step, more than the pixel budget of 64 Mpx: too large for memory"),
    ("perf-eval-repeat-0", "perf eval --n 1 --repeat 0", r"--repeat: 0 is out of range: give an integer from 1 to 10,000"),
    ("perf-eval-repeat-negative", "perf eval --n 1 --repeat -2", r"--repeat: -2 is out of range"),
    ("submit-out-is-a-folder", "submit --checkpoint {ckpt} --dataset {ds} --out {tmp}/adir.zip --no-progress", r"--out .*adir.zip is a folder"),
    ("submit-out-unwritable", "submit --checkpoint {ckpt} --dataset {ds} --out {unwritable}/s.zip --no-progress", r"--out .*cannot write in /sys/kernel"),
    ("convert-out-is-a-folder", "convert {tmp}/src.pth --out {tmp}/adir.keras", r"--out .*adir.keras is a folder"),
    ("convert-out-unwritable", "convert {tmp}/src.pth --out {unwritable}/c.keras", r"--out .*cannot write in /sys/kernel"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "expect"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_before_any_work(
    argv: str, expect: str, checkpoint, dataset, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr("bench.run.RUNS_DIR", tmp_path / "runs")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.zip").mkdir()
    (tmp_path / "adir.keras").mkdir()
    (tmp_path / "src.pth").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    before = snapshot(tmp_path)
    text = argv.format(ckpt=checkpoint, ds=dataset, tmp=tmp_path, unwritable=UNWRITABLE)
    code, out = cli(text.split(), capsys)
    assert code == 2 and "Traceback" not in out, out
    assert re.search(expect, out), out
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("temperature", ["0.25", "0.2", "4"])
def test_predict_applies_any_temperature_in_range(
    temperature: str, checkpoint, dataset, tmp_path, capsys
) -> None:
    """0.25 and 0.2 used to end in `RuntimeError: generator raised StopIteration`."""
    argv = PREDICT.format(ckpt=checkpoint, ds=dataset, tmp=tmp_path).split()
    code, out = cli(
        [*argv, "--evaluate", "--temperature", temperature, "--json", str(tmp_path / "r.json")], capsys
    )
    assert code == 0 and "Traceback" not in out, out
    import json

    calibration = json.loads((tmp_path / "r.json").read_text())["calibration"]
    assert calibration["temperature"] == float(temperature) and calibration["temperatureSource"] == "given"


def test_help_says_the_ranges(capsys) -> None:
    for command, needle in (
        ("predict", "from 0.01 to 100"),
        ("train", "from 1 to 1,000,000"),
        ("perf eval", "from 1 to 10,000"),
    ):
        with pytest.raises(SystemExit):
            main([*command.split(), "--help"])
        assert needle in " ".join(capsys.readouterr().out.split()), command


def test_a_seed_sweep_that_fails_leaves_no_folder_and_is_named_by_its_checkpoint(
    checkpoint, dataset, tmp_path, capsys, monkeypatch
) -> None:
    from bench import run as run_module

    runs = tmp_path / "runs"
    calls = []

    def failing(model, *, seed, **options):
        calls.append((model, seed))
        raise UserError(f"seed {seed} failed")

    monkeypatch.setattr(run_module, "run_benchmark", failing)
    with pytest.raises(UserError, match="seed 0 failed"):
        run_module.run_seeds(
            None,
            (0, 1),
            checkpoint=str(checkpoint),
            runs_dir=runs,
            results_csv=tmp_path / "r.csv",
            readme=None,
        )
    assert calls == [(None, 0)]
    assert list(runs.iterdir()) == []  # no half-made seeds folder
    made = []
    monkeypatch.setattr(
        "bench.report.run_folder.Path.mkdir",
        lambda self, *a, **k: made.append(self.name) or os.makedirs(self, exist_ok=True),
    )
    with pytest.raises(UserError):
        run_module.run_seeds(
            None,
            (0, 1),
            checkpoint=str(checkpoint),
            runs_dir=runs,
            results_csv=tmp_path / "r.csv",
            readme=None,
        )
    assert any(name.endswith("_tiny_seeds-0-1") for name in made), made
    assert not any("None" in name for name in made), made


# ---------------------------------------------------------------- a full disk: every output named
def test_a_checkpoint_on_a_full_disk_is_a_clear_error_and_leaves_nothing(net, tmp_path) -> None:
    with full_file_system(tmp_path / "full") as full:
        before = sorted(p.name for p in full.iterdir())
        with pytest.raises(
            UserError, match=r"cannot save checkpoint .*best.keras \(No space left on device\): free space"
        ):
            ckpt.save(net, full / "best.keras", {"model": MODEL, "num_classes": 19})
        assert sorted(p.name for p in full.iterdir()) == before


def test_a_checkpoint_onto_a_folder_is_a_clear_error(net, tmp_path) -> None:
    (tmp_path / "x.keras").mkdir()
    with pytest.raises(UserError, match=r"cannot save checkpoint .*x.keras \(Is a directory\)"):
        ckpt.save(net, tmp_path / "x.keras", {"model": MODEL, "num_classes": 19})
    assert [p.name for p in tmp_path.iterdir()] == ["x.keras"]


def test_training_logs_on_a_full_disk_are_a_clear_error(tmp_path) -> None:
    from bench.training.train_log import LOG_COLUMNS, CsvLog

    with full_file_system(tmp_path / "full") as full:
        with pytest.raises(
            UserError,
            match=r"cannot write training log .*train_log.csv \(No space left on device\): free space or choose another --out, then --resume",
        ):
            log = CsvLog(full / "train_log.csv", LOG_COLUMNS, 0)
            for step in range(10_000):
                log.write(dict.fromkeys(LOG_COLUMNS, step))


def test_writing_names_a_read_only_file(tmp_path) -> None:
    with pytest.raises(
        UserError, match=r"cannot write the curve .*c.png \(Read-only file system\): free space"
    ):
        with writing(tmp_path / "c.png", "the curve"):
            raise OSError(30, "Read-only file system")


@pytest.mark.parametrize(
    "command",
    [
        "convert {tmp}/src.pth --out {full}/c.keras",
        "submit --checkpoint {ckpt} --dataset {ds} --out {full}/s.zip --no-progress",
        PREDICT + " --evaluate --json {full}/r.json",
        PREDICT + " --save-logits {full}/logits",
    ],
    ids=["convert", "submit", "predict-json", "predict-logits"],
)
def test_an_output_on_a_full_disk_is_refused_before_the_work(
    command: str, checkpoint, dataset, tmp_path, capsys
) -> None:
    (tmp_path / "src.pth").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with full_file_system(tmp_path / "full") as full:
        before = snapshot(full)
        code, out = cli(command.format(ckpt=checkpoint, ds=dataset, tmp=tmp_path, full=full).split(), capsys)
        assert code == 2 and "Traceback" not in out, out
        assert "no space left" in out, out
        assert snapshot(full) == before
    assert not (tmp_path / "preds").exists()


def test_the_weights_file_that_is_a_fifo_is_named(tmp_path) -> None:
    from bench.sources.download import weights_file
    from bench.sources.weights import table

    entry = table()[0]
    os.mkfifo(tmp_path / entry.file_name)
    with pytest.raises(UserError, match=r"weights file of .* is a FIFO"):
        weights_file(entry, tmp_path, download=False)


# ---------------------------------------------------------------- training inputs: named before TensorFlow reads them
def _train_labels(root: Path) -> Path:
    return sorted((root / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[0]


def _train_image(root: Path) -> Path:
    return sorted((root / "leftImg8bit" / "train").rglob("*_leftImg8bit.png"))[0]


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


SPOILED_TRAINING = {
    "labels-truncated": (_train_labels, _cut, r"training labels .*_gtFine_labelIds.png is truncated or corrupt \(it does not end with a PNG's IEND chunk\)"),
    "labels-fifo": (_train_labels, lambda p: (p.unlink(), os.mkfifo(p)), r"training labels .*labelIds.png is a FIFO"),
    "labels-bomb": (_train_labels, lambda p: p.write_bytes(BOMB), r"training labels .*labelIds.png declares 100000x100000 pixels"),
    "image-truncated": (_train_image, _cut, r"image .*_leftImg8bit.png is truncated or corrupt"),
    "image-bomb": (_train_image, lambda p: p.write_bytes(BOMB), r"image .*_leftImg8bit.png declares 100000x100000 pixels"),
    "image-jpeg-named-png": (_train_image, lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64), r"image .*_leftImg8bit.png is not a PNG file"),
}  # fmt: skip


@pytest.mark.parametrize("spoil", SPOILED_TRAINING)
def test_a_spoiled_training_file_is_named_before_training(spoil: str, dataset, tmp_path, capsys) -> None:
    import shutil

    root = shutil.copytree(dataset, tmp_path / "ds")
    which, damage, expect = SPOILED_TRAINING[spoil]
    damage(which(root))
    code, out = cli(TRAIN.format(ds=root, tmp=tmp_path).split(), capsys)
    assert code == 2 and "Traceback" not in out, out
    assert re.search(expect, out), out
    assert not (tmp_path / "train").exists()


@pytest.mark.skipif(os.geteuid() == 0 and shutil_which("setpriv") is None, reason="root without setpriv")
def test_an_unreadable_training_image_is_named(dataset, tmp_path) -> None:
    import shutil
    import subprocess
    import sys

    root = shutil.copytree(dataset, tmp_path / "ds")
    _train_image(root).chmod(0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "bench", *TRAIN.format(ds=root, tmp=tmp_path).split()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"image .*_leftImg8bit.png is not readable \(permission denied\)", done.stderr), (
        done.stderr
    )


# ---------------------------------------------------------------- kill -9: what a dead writer left is cleared
def _unused_pid() -> int:
    for pid in range(4_194_000, 4_194_300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            continue
    pytest.skip("no unused pid found")


def test_a_rerun_clears_what_a_killed_predict_left(checkpoint, dataset, tmp_path, capsys) -> None:
    argv = PREDICT.format(ckpt=checkpoint, ds=dataset, tmp=tmp_path).split()
    assert cli(argv, capsys)[0] == 0
    dead = _unused_pid()
    stale = tmp_path / f".preds.{dead}.abcd1234.partial"  # what kill -9 mid-predict leaves
    stale.mkdir()
    (stale / "frankfurt_000000_000019_leftImg8bit.png").write_bytes(b"half")
    live = tmp_path / f".preds.{os.getppid()}.efgh5678.partial"  # a live writer's: kept
    live.mkdir()
    assert cli(argv, capsys)[0] == 0
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [live.name]


def test_a_swap_cut_between_its_renames_gets_the_old_folder_back(tmp_path) -> None:
    from bench.common.atomic import replaced_folder

    dead = _unused_pid()
    old = tmp_path / f".preds.{dead}.old"
    old.mkdir()
    (old / "kept.png").write_bytes(b"the last complete predictions")
    with pytest.raises(RuntimeError):
        with replaced_folder(tmp_path / "preds"):
            raise RuntimeError("this run fails too")
    assert (tmp_path / "preds" / "kept.png").read_bytes() == b"the last complete predictions"
    assert not old.exists()


def test_a_rerun_clears_what_a_killed_submit_left(tmp_path) -> None:
    from bench.common.atomic import replacing

    dead = _unused_pid()
    stale = tmp_path / f".s.zip.{dead}.abcd1234.tmp"
    stale.write_bytes(b"PK half a zip")
    with replacing(tmp_path / "s.zip") as tmp:
        tmp.write_bytes(b"PK whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zip"]


# ---------------------------------------------------------------- multi-worker: this task's own address
def test_a_tf_config_whose_own_port_is_in_use_is_named(dataset, tmp_path, capsys, monkeypatch) -> None:
    import json
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = {
            "cluster": {"worker": [f"localhost:{port}", "localhost:1"]},
            "task": {"type": "worker", "index": 0},
        }
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        argv = TRAIN.format(ds=dataset, tmp=tmp_path).replace("--batch 1", "--batch 2").split()
        code, out = cli([*argv, "--strategy", "multiworker"], capsys)
    assert code == 2 and "Traceback" not in out, out
    assert (
        f"this task's address localhost:{port} (worker 0): port {port} is in use by another process" in out
    ), out
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize("address", ["localhost:http", "localhost:0", "localhost:70000", "localhost"])
def test_a_tf_config_address_that_is_no_port_is_named(
    address: str, dataset, tmp_path, capsys, monkeypatch
) -> None:
    import json

    config = {"cluster": {"worker": [address, "localhost:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    argv = TRAIN.format(ds=dataset, tmp=tmp_path).replace("--batch 1", "--batch 2").split()
    code, out = cli([*argv, "--strategy", "multiworker"], capsys)
    assert code == 2 and "Traceback" not in out, out
    assert f'{address!r}, not a "host:port" address' in out, out


# ---------------------------------------------------------------- Ctrl-C: the checkpoint is named for what it holds
def test_ctrl_c_after_a_step_names_the_checkpoint_for_the_weights_it_holds(
    dataset, tmp_path, monkeypatch
) -> None:
    from bench.training import train_step as train_module

    real = train_module.make_train_step
    calls = []

    def interrupted_after_the_second_update(*args, **kwargs):
        step = real(*args, **kwargs)

        def wrapped(images, labels):
            values = step(images, labels)
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt  # the weights hold 2 steps; the loop had counted 1
            return values

        return wrapped

    monkeypatch.setattr(train_module, "make_train_step", interrupted_after_the_second_update)
    argv = TRAIN.format(ds=dataset, tmp=tmp_path).replace("--steps 1", "--steps 5").split()
    try:
        code = main(argv)
    except KeyboardInterrupt:
        code = 130
    assert code != 0
    (saved,) = ckpt.list_checkpoints(tmp_path / "train")
    assert saved.name == ckpt.checkpoint_name(2), saved.name
    assert ckpt.read_metadata(saved)["steps"] == 2
