"""Bad inputs and faults of the engine commands (train, predict, run, models, perf model/pipeline).

The matrix runs each case in-process through `bench.cli.main` and demands what the house rules promise:
exit 2, an `error:` line naming the option or file and the fix, no traceback, and nothing written or
changed (every file under the case's folder and the shared fixtures is compared before and after).
Behaviour tests after it prove the fixes of issue 12 (lock, run predictions, predict folder replacement,
quiet TensorFlow start-up, progress in logs) with real processes where the defect needs them.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.cli import main
from bench.common import atomic
from bench.common import progress as progress_module
from bench.common.tensorflow_import import filter_lines
from data.errors import UserError
from tests.cityscapes_files import write_dataset

MODEL = "tests.tiny_model:tiny"
UNWRITABLE = Path("/sys/kernel/bench-test")  # refused even to root: sysfs takes no new files
PROJECT = Path(__file__).resolve().parents[1]

PLUGINS = {
    "bad_plugin_runtime": 'raise RuntimeError("the plugin broke at import")\n',
    "bad_plugin_syntax": "def build(:\n",
    "bad_plugin_builders": (
        "def rejects(num_classes=19, input_shape=(None, None, 3), *, aux_head=False, width=16):\n"
        '    raise ValueError(f"width must be a power of two, got {width}")\n'
        "def returns_none(num_classes=19, input_shape=(None, None, 3), *, aux_head=False):\n"
        "    return None\n"
    ),
}


# --------------------------------------------------------------------------------------------- fixtures


@dataclass
class Ctx:
    """Paths a case's argv and expected messages are formatted with (`{ds}`, `{tmp}`, ...)."""

    ds: Path
    gt_only: Path
    empty_root: Path
    trained: Path
    ckpt: Path
    bad: dict[str, Path]
    tmp: Path = Path()
    file: Path = Path()
    extra: dict[str, Path] = field(default_factory=dict)

    def fmt(self, text: str) -> str:
        values = {k: v for k, v in vars(self).items() if isinstance(v, Path)}
        values.update({f"bad_{k}": v for k, v in self.bad.items()})
        values["unwritable"] = UNWRITABLE
        return text.format(**values)


def _rewrite_entry(src: Path, dst: Path, entry: str, data: bytes | None) -> Path:
    """A copy of the checkpoint zip `src` with `entry` replaced by `data` (dropped when None)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename != entry:
                zout.writestr(info, zin.read(info))
            elif data is not None:
                zout.writestr(info, data)
    return dst


def _flip_bytes(src: Path, dst: Path, entry: str) -> Path:
    """A copy with 64 bytes inside `entry`'s stored data inverted: the zip opens, its CRC check fails."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        info = archive.getinfo(entry)
    assert info.compress_type == zipfile.ZIP_STORED
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
    data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """Plugin modules that fail in each way a user's plugin can, importable for the module's tests."""
    folder = tmp_path_factory.mktemp("plugins")
    for name, code in PLUGINS.items():
        (folder / f"{name}.py").write_text(code)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in PLUGINS:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, plugins) -> Ctx:
    base = tmp_path_factory.mktemp("bad_inputs")
    ds = write_dataset(base / "ds", train=2, val=2, size=(32, 64), seed=3)
    gt_only = write_dataset(base / "gt_only", train=2, val=2, size=(32, 64), seed=3)
    for image in (gt_only / "leftImg8bit").rglob("*.png"):
        image.unlink()
    (base / "empty_root").mkdir()
    trained = base / "trained"
    argv = ["train", "--model", MODEL, "--dataset", str(ds), "--steps", "2", "--batch", "1"]
    assert main([*argv, "--crop", "32x32", "--out", str(trained), "--no-progress"]) == 0
    (ckpt,) = trained.glob("ckpt-*.keras")
    bad_dir = base / "bad"
    weights = "model.weights.h5"
    bad = {
        "crc": _flip_bytes(ckpt, bad_dir / "crc" / ckpt.name, weights),
        "h5": _rewrite_entry(ckpt, bad_dir / "h5" / ckpt.name, weights, b"not an HDF5 file" * 8),
        "truncated": bad_dir / "truncated.keras",
        "text": bad_dir / "text.keras",
        "plain_zip": bad_dir / "plain_zip.keras",
        "meta_list": _rewrite_entry(ckpt, bad_dir / "meta_list.keras", "bench.json", b"[1, 2]"),
        "meta_json": _rewrite_entry(ckpt, bad_dir / "meta_json.keras", "bench.json", b'{"model": '),
        "meta_classes": _rewrite_entry(
            ckpt, bad_dir / "meta_classes.keras", "bench.json", b'{"model": "x", "num_classes": "19"}'
        ),
        "meta_model": _rewrite_entry(
            ckpt, bad_dir / "meta_model.keras", "bench.json", b'{"model": "no-such-model", "num_classes": 19}'
        ),
        "meta_options": _rewrite_entry(
            ckpt,
            bad_dir / "meta_options.keras",
            "bench.json",
            f'{{"model": "{MODEL}", "num_classes": 19, "options": {{"width": 8}}}}'.encode(),
        ),
    }
    bad["truncated"].write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    bad["text"].write_text("this is not a checkpoint\n")
    with zipfile.ZipFile(bad["plain_zip"], "w") as archive:
        archive.writestr("readme.txt", "a zip, but no Keras model")
    return Ctx(ds=ds, gt_only=gt_only, empty_root=base / "empty_root", trained=trained, ckpt=ckpt, bad=bad)


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file (size, mtime) and folder under `roots`: any file written, changed or left shows.

    A `.train.lock` left empty is left out (a training folder's lock file: its holder removes it when done,
    and the lock re-checks the path's file after locking, so a removed file is never held twice).
    """
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            if path.name == ".train.lock" and path.stat().st_size == 0:
                continue
            stat = path.stat()
            found[str(path)] = (stat.st_size, stat.st_mtime_ns) if path.is_file() else (-1, 0)
    return found


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors exit 2 from inside parse_args
        return exc.code


# ---------------------------------------------------------------------------------------------- matrix


@dataclass(frozen=True)
class Case:
    id: str
    argv: str  # formatted with Ctx.fmt, then split on spaces
    needles: tuple[str, ...]  # each must be in stderr (formatted too)
    setup: Callable[[Ctx], None] | None = None


def _train(extra: str, out: str = "{tmp}/out") -> str:
    return f"train --model {MODEL} --dataset {{ds}} --steps 2 --batch 1 --crop 32x32 --out {out} {extra}"


def _predict(extra: str, out: str = "{tmp}/preds", checkpoint: str = "{trained}") -> str:
    return f"predict --checkpoint {checkpoint} --dataset {{ds}} --out {out} --no-progress {extra}"


def _run(extra: str) -> str:
    return f"run --model {MODEL} --dataset {{ds}} --checkpoint {{ckpt}} --no-readme {extra}"


def _write_file(c: Ctx) -> None:
    c.file.write_text("a file, not a folder\n")


def _foreign_folder(c: Ctx) -> None:
    (c.tmp / "preds").mkdir()
    (c.tmp / "preds" / "notes.txt").write_text("mine\n")


def _old_checkpoint(c: Ctx) -> None:
    (c.tmp / "out").mkdir()
    (c.tmp / "out" / c.ckpt.name).write_bytes(c.ckpt.read_bytes())


def _damaged_to_resume(c: Ctx) -> None:
    (c.tmp / "out").mkdir()
    (c.tmp / "out" / c.ckpt.name).write_bytes(c.bad["crc"].read_bytes())


CASES = [
    # train: numbers (defect 9: --log-every 0 trained a step, then ZeroDivisionError, no checkpoint)
    Case("train-steps-0", _train("--steps 0"), ("--steps 0", "at least 1")),
    Case("train-steps-negative", _train("--steps -5"), ("--steps -5",)),
    Case("train-steps-not-a-number", _train("--steps many"), ("--steps", "invalid int")),
    Case("train-batch-0", _train("--batch 0"), ("--batch 0",)),
    Case("train-log-every-0", _train("--log-every 0"), ("--log-every 0", "at least 1")),
    Case("train-log-every-negative", _train("--log-every -1"), ("--log-every -1",)),
    Case("train-checkpoint-every-0", _train("--checkpoint-every 0"), ("--checkpoint-every 0",)),
    Case("train-lr-0", _train("--lr 0"), ("--lr 0", "e.g. 0.01")),
    Case("train-lr-nan", _train("--lr nan"), ("--lr nan",)),
    Case("train-lr-inf", _train("--lr inf"), ("--lr inf",)),
    Case("train-lr-negative", _train("--lr -0.1"), ("--lr -0.1",)),
    Case("train-weight-decay-negative", _train("--weight-decay -1"), ("--weight-decay -1",)),
    Case("train-weight-decay-nan", _train("--weight-decay nan"), ("--weight-decay nan",)),
    Case("train-seed-negative", _train("--seed -1"), ("--seed -1",)),
    Case("train-crop-zero", _train("--crop 0x32"), ("--crop", "HEIGHTxWIDTH")),
    Case("train-crop-words", _train("--crop big"), ("--crop", "HEIGHTxWIDTH")),
    # train: output folder (defect 6) and the folder's state
    Case("train-out-under-a-file", _train("", "{file}/out"), ("--out", "{file} is a file"), _write_file),
    Case("train-out-is-a-file", _train("", "{file}"), ("--out {file} is a file",), _write_file),
    Case("train-out-unwritable", _train("", "{unwritable}/out"), ("--out", "cannot write in /sys/kernel")),
    Case("train-out-has-checkpoints", _train(""), ("already holds checkpoints", "--resume"), _old_checkpoint),
    Case("train-resume-nothing", _train("--resume"), ("holds no ckpt-*.keras", "drop --resume")),
    Case("train-resume-damaged", _train("--resume --steps 4"), ("is damaged", "Bad CRC"), _damaged_to_resume),
    # train: model, options, plugins (defect 8)
    Case("train-model-unknown", _train("--model nosuchnet"), ("unknown model 'nosuchnet'", "pspnet")),
    Case("train-plugin-missing", _train("--model nosuch.module:build"), ("cannot import plugin module",)),
    Case(
        "train-plugin-no-function", _train("--model tests.tiny_model:nothing"), ("has no function 'nothing'",)
    ),
    Case(
        "train-plugin-raises-at-import",
        _train("--model bad_plugin_runtime:build"),
        ("bad_plugin_runtime", "RuntimeError: the plugin broke at import", "fix the plugin"),
    ),
    Case("train-plugin-syntax-error", _train("--model bad_plugin_syntax:build"), ("SyntaxError",)),
    Case(
        "train-plugin-builder-valueerror",
        _train("--model bad_plugin_builders:rejects --model-opt width=3"),
        ("'bad_plugin_builders:rejects'", "width=3", "width must be a power of two"),
    ),
    Case(
        "train-plugin-returns-none",
        _train("--model bad_plugin_builders:returns_none"),
        ("returned NoneType, not a keras.Model",),
    ),
    Case(
        "train-model-opt-depth-7",
        _train("--model pspnet --preset tiny --model-opt depth=7"),
        ("model 'pspnet' (preset tiny)", "depth=7", "depth must be one of"),
    ),
    Case(
        "train-model-opt-unknown", _train("--model-opt colour=red"), ("does not take these options", "colour")
    ),
    Case("train-model-opt-not-kv", _train("--model-opt depth"), ("'depth' is not key=value",)),
    Case("train-preset-unknown", _train("--model pspnet --preset huge"), ("no preset 'huge'", "cpu")),
    # train: datasets
    Case("train-dataset-missing", _train("--dataset {tmp}/nowhere"), ("{tmp}/nowhere does not exist",)),
    Case("train-dataset-empty-folder", _train("--dataset {empty_root}"), ("has no leftImg8bit/",)),
    Case("train-dataset-without-images", _train("--dataset {gt_only}"), ("have no image", "leftImg8bit")),
    # predict: checkpoints (defect 13: damaged weights were a BadZipFile traceback)
    Case("predict-checkpoint-missing", _predict("", checkpoint="{tmp}/none.keras"), ("does not exist",)),
    Case("predict-checkpoint-empty-folder", _predict("", checkpoint="{empty_root}"), ("holds no ckpt-",)),
    Case("predict-checkpoint-text", _predict("", checkpoint="{bad_text}"), ("not a readable .keras",)),
    Case("predict-checkpoint-truncated", _predict("", checkpoint="{bad_truncated}"), ("not a readable",)),
    Case("predict-checkpoint-crc", _predict("", checkpoint="{bad_crc}"), ("{bad_crc} is damaged", "CRC")),
    Case("predict-checkpoint-h5", _predict("", checkpoint="{bad_h5}"), ("{bad_h5} is damaged",)),
    Case("predict-checkpoint-plain-zip", _predict("", checkpoint="{bad_plain_zip}"), ("cannot load",)),
    Case(
        "predict-metadata-list",
        _predict("", checkpoint="{bad_meta_list}"),
        ("bench.json entry is malformed",),
    ),
    Case("predict-metadata-json", _predict("", checkpoint="{bad_meta_json}"), ("not a readable .keras",)),
    Case(
        "predict-metadata-classes", _predict("", checkpoint="{bad_meta_classes}"), ("'num_classes' is '19'",)
    ),
    Case("predict-metadata-model", _predict("", checkpoint="{bad_meta_model}"), ("unknown model 'no-such",)),
    Case(
        "predict-foreign-weights",
        _predict("", checkpoint="{bad_meta_options}"),
        ("does not fit the model", "value.shape=(3, 3, 3, 16))"),
    ),
    # predict: numbers and modes (defect 12: nan/inf passed the <= 0 check)
    Case("predict-scales-nan", _predict("--mode multiscale --scales nan"), ("--scales", "'nan'")),
    Case("predict-scales-inf", _predict("--mode multiscale --scales 1,inf"), ("--scales", "'1,inf'")),
    Case("predict-scales-zero", _predict("--mode multiscale --scales 0"), ("--scales",)),
    Case("predict-scales-negative", _predict("--mode multiscale --scales=-1"), ("--scales",)),
    Case("predict-scales-huge", _predict("--mode multiscale --scales 1e9"), ("at most 8",)),
    Case("predict-scales-words", _predict("--mode multiscale --scales a,b"), ("--scales",)),
    Case("predict-scales-without-multiscale", _predict("--scales 1.0"), ("--mode multiscale only",)),
    Case("predict-mode-unknown", _predict("--mode tiles"), ("--mode", "invalid choice")),
    Case("predict-crop-zero", _predict("--mode slide --crop 0x16"), ("--crop",)),
    Case("predict-stride-zero", _predict("--mode slide --stride 0"), ("--stride",)),
    Case("predict-limit-0", _predict("--limit 0"), ("--limit 0",)),
    Case("predict-limit-negative", _predict("--limit -3"), ("--limit -3",)),
    # predict: output folders (defects 6 and 15) and datasets
    Case("predict-out-under-a-file", _predict("", "{file}/preds"), ("{file} is a file",), _write_file),
    Case("predict-out-is-a-file", _predict("", "{file}"), ("--out {file} is a file",), _write_file),
    Case("predict-out-unwritable", _predict("", "{unwritable}/preds"), ("cannot write in /sys/kernel",)),
    Case(
        "predict-out-foreign-files", _predict(""), ("did not write", "new or empty folder"), _foreign_folder
    ),
    Case("predict-out-is-the-dataset", _predict("", "{ds}"), ("{ds} already holds files",)),
    Case("predict-split-unknown", _predict("--split nosuch"), ("split 'nosuch' has no images",)),
    Case(
        "predict-evaluate-split-unknown", _predict("--split nosuch --evaluate"), ("split 'nosuch' is empty",)
    ),
    Case("predict-dataset-without-images", _predict("--dataset {gt_only}"), ("split 'val' has no images",)),
    Case("predict-evaluate-without-images", _predict("--dataset {gt_only} --evaluate"), ("have no image",)),
    Case("predict-evaluate-without-gt", _predict("--dataset {empty_root} --evaluate"), ("has no gtFine/",)),
    Case("predict-dataset-missing", _predict("--dataset {tmp}/nowhere"), ("does not exist",)),
    # run (defects 7 and 12)
    Case("run-model-unknown", _run("--model nosuchnet"), ("unknown model",)),
    Case("run-checkpoint-missing", _run("--checkpoint {tmp}/none.keras"), ("does not exist",)),
    Case("run-checkpoint-damaged", _run("--checkpoint {bad_crc}"), ("is damaged",)),
    Case("run-checkpoint-other-model", _run("--model pspnet"), ("holds model 'tests.tiny_model:tiny'",)),
    Case("run-scales-nan", _run("--mode multiscale --scales nan"), ("--scales", "'nan'")),
    Case("run-scales-inf", _run("--mode multiscale --scales 0.5,inf"), ("--scales",)),
    Case("run-mode-unknown", _run("--mode tiles"), ("invalid choice",)),
    Case("run-steps-0", _run("--steps 0"), ("--steps 0",)),
    Case("run-workers-0", _run("--workers 0"), ("--workers 0",)),
    Case("run-dataset-missing", _run("--dataset {tmp}/nowhere"), ("does not exist",)),
    Case("run-plugin-raises", _run("--model bad_plugin_runtime:build"), ("RuntimeError",)),
    # models (defect 8: builder ValueError was a traceback)
    Case("models-unknown", "models nosuchnet --no-params", ("unknown model 'nosuchnet'",)),
    Case("models-option-depth-7", "models pspnet -o depth=7", ("model 'pspnet'", "depth=7", "depth must be")),
    Case("models-num-classes-0", "models pspnet --num-classes 0", ("num_classes", "at least 1")),
    Case("models-option-not-kv", "models pspnet -o depth", ("not key=value",)),
    Case("models-flops-zero", "models pspnet --flops 0x0", ("--flops", "HEIGHTxWIDTH")),
    Case("models-flops-words", "models pspnet --flops big", ("--flops",)),
    Case("models-plugin-raises", "models bad_plugin_runtime:build", ("RuntimeError", "fix the plugin")),
    Case("models-plugin-valueerror", "models bad_plugin_builders:rejects -o width=3", ("width=3",)),
    # perf model / perf pipeline
    Case("perf-model-preset-unknown", "perf model pspnet:huge@64x64", ("no preset 'huge'",)),
    Case("perf-model-size-zero", "perf model pspnet@0x64", ("MODEL[:PRESET]@HxW",)),
    Case("perf-model-size-words", "perf model pspnet@big", ("MODEL[:PRESET]@HxW",)),
    Case("perf-model-unknown", "perf model nosuchnet@64x64", ("unknown model",)),
    Case("perf-model-batch-0", "perf model pspnet:tiny@64x64 --batch 0", ("--batch 0",)),
    Case("perf-model-matmul-0", "perf model pspnet:tiny@64x64 --matmul-size 0", ("--matmul-size 0",)),
    Case("perf-model-train-step-0", "perf model pspnet:tiny@64x64 --train-step 0x8x8", ("--train-step",)),
    Case("perf-pipeline-batch-0", "perf pipeline --dataset {ds} --batch 0", ("--batch",)),
    Case("perf-pipeline-dataset-missing", "perf pipeline --dataset {tmp}/nowhere", ("does not exist",)),
    Case("perf-pipeline-without-images", "perf pipeline --dataset {gt_only}", ("have no image",)),
    Case("perf-pipeline-preset-unknown", "perf pipeline --dataset {ds} --preset huge", ("no preset 'huge'",)),
    Case("perf-pipeline-model-unknown", "perf pipeline --dataset {ds} --model nosuchnet", ("unknown model",)),
    Case("perf-pipeline-crop-zero", "perf pipeline --dataset {ds} --crop 0", ("--crop",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(case, ctx, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    (tmp_path / "runs").mkdir()  # as results/runs/ is in the project
    monkeypatch.setattr("bench.run.RUNS_DIR", tmp_path / "runs")
    ctx.tmp, ctx.file = tmp_path, tmp_path / "file.txt"
    if case.setup:
        case.setup(ctx)
    shared = (ctx.ds, ctx.gt_only, ctx.empty_root, ctx.trained, ctx.ckpt.parent, PROJECT / "results")
    before = snapshot(tmp_path, *shared)

    code = run_cli(ctx.fmt(case.argv).split())

    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\n{err}"
    assert "Traceback" not in out + err
    assert "error:" in err
    for needle in case.needles:
        assert ctx.fmt(needle) in err
    assert snapshot(tmp_path, *shared) == before


def test_the_matrix_holds_enough_cases():
    assert len(CASES) >= 90 and len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------ faults mid-work


def _predict_argv(ctx: Ctx, out: Path, *extra: str) -> list[str]:
    return ["predict", "--checkpoint", str(ctx.trained), "--dataset", str(ctx.ds), "--out", str(out), *extra]


def test_full_disk_while_predicting_keeps_the_old_predictions(ctx, tmp_path, capsys, monkeypatch):
    out = tmp_path / "preds"
    assert main(_predict_argv(ctx, out, "--no-progress")) == 0
    before = snapshot(tmp_path)
    calls = []

    def disk_full(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return atomic.write_bytes(path, data)

    monkeypatch.setattr("bench.inference.sinks.write_bytes", disk_full)
    assert main(_predict_argv(ctx, out, "--no-progress")) == 2
    err = capsys.readouterr().err
    assert "cannot write predictions" in err and "No space left" in err and "Traceback" not in err
    assert _without_lock(snapshot(tmp_path)) == _without_lock(before)  # as it was, no hidden partial folder


def test_ctrl_c_while_predicting_keeps_the_old_predictions(ctx, tmp_path, capsys, monkeypatch):
    out = tmp_path / "preds"
    assert main(_predict_argv(ctx, out, "--no-progress")) == 0
    before = snapshot(tmp_path)

    def interrupted(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr("bench.inference.sinks.write_bytes", interrupted)
    assert main(_predict_argv(ctx, out, "--no-progress")) == 130
    assert _without_lock(snapshot(tmp_path)) == _without_lock(before)


def _without_lock(state: dict) -> dict:
    """A snapshot less the `--out` lock beside the folder (each run writes its pid there)."""
    return {k: v for k, v in state.items() if not k.endswith(".preds.lock")}


def test_full_disk_while_saving_a_checkpoint_is_a_clear_error(ctx, tmp_path, capsys, monkeypatch):
    def disk_full(model, path, metadata):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("bench.sources.keras_checkpoint.save", disk_full)
    argv = ["train", "--model", MODEL, "--dataset", str(ctx.ds), "--steps", "1", "--batch", "1"]
    assert main([*argv, "--crop", "32x32", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot save checkpoint" in err and "ckpt-000001.keras" in err and "Traceback" not in err


# ------------------------------------------------------------------------- defect 15: predict's folder


def test_predict_with_a_limit_leaves_exactly_this_runs_frames(ctx, tmp_path):
    out = tmp_path / "preds"
    assert main(_predict_argv(ctx, out, "--no-progress", "--colorize")) == 0
    assert len(list(out.glob("*_leftImg8bit.png"))) == 2
    assert len(list((out / "color").glob("color_*.png"))) == 2

    assert main(_predict_argv(ctx, out, "--no-progress", "--limit", "1", "--colorize")) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["color", "predict_stats.json", "testcity_000000_000019_leftImg8bit.png"]
    assert len(list((out / "color").iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds"]  # its lock is gone with the command


def test_predict_into_an_empty_existing_folder_is_allowed(ctx, tmp_path):
    out = tmp_path / "preds"
    out.mkdir()
    assert main(_predict_argv(ctx, out, "--no-progress")) == 0
    assert len(list(out.glob("*_leftImg8bit.png"))) == 2


# ------------------------------------------------------------ defect 7: a run's predictions are its own


@pytest.mark.slow
def test_runs_sharing_a_checkpoint_folder_keep_their_own_predictions(ctx, tmp_path, capfd):
    from bench.run import run_benchmark

    shared = snapshot(ctx.trained)
    kwargs = dict(
        dataset=str(ctx.ds),
        checkpoint=str(ctx.ckpt),
        readme=None,
        results_csv=tmp_path / "results.csv",
        runs_dir=tmp_path / "runs",
        workers=1,
        progress=True,
    )
    first = run_benchmark(MODEL, **kwargs)
    second = run_benchmark(MODEL, **kwargs)
    err = capfd.readouterr().err

    assert snapshot(ctx.trained) == shared  # nothing written beside the checkpoint
    for report in (first, second):
        preds = sorted(p.name for p in (report.run_dir / "predictions").iterdir())
        assert len(preds) == 3 and preds[0] == "predict_stats.json"
    assert first.run_dir != second.run_dir
    # progress in a log (stderr is not a terminal here): whole lines, no carriage-return bars
    assert "\r" not in err and "predict: img 2/2 (100%)" in err


def test_run_refuses_an_unwritable_results_folder_before_any_work(ctx, tmp_path):
    from bench.run import run_benchmark

    with pytest.raises(UserError, match="run folder root /sys/kernel/bench-test/runs: cannot write in"):
        run_benchmark(MODEL, dataset=str(ctx.ds), checkpoint=str(ctx.ckpt), runs_dir=UNWRITABLE / "runs")


def test_a_failed_run_leaves_no_run_folder(ctx, tmp_path, monkeypatch):
    from bench.run import run_benchmark

    def broken(*args, **kwargs):
        raise UserError("evaluation failed")

    # bench run scores frames as it predicts them: the evaluation fails where the scores are read
    monkeypatch.setattr("bench.evaluation.streaming.StreamingEvaluator.evaluate", broken)
    with pytest.raises(UserError, match="evaluation failed"):
        run_benchmark(
            MODEL,
            dataset=str(ctx.ds),
            checkpoint=str(ctx.ckpt),
            readme=None,
            results_csv=tmp_path / "results.csv",
            runs_dir=tmp_path / "runs",
            workers=1,
            progress=False,
        )
    assert list((tmp_path / "runs").iterdir()) == []


# ---------------------------------------------- defect 2: two trainings into one folder, real processes


def _bench(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *argv],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_second_training_into_a_busy_folder_is_refused_naming_the_first(ctx, tmp_path):
    out = tmp_path / "out"
    argv = ["train", "--model", MODEL, "--dataset", str(ctx.ds), "--batch", "1", "--crop", "32x32"]
    first = _bench(*argv, "--steps", "60", "--log-every", "1", "--out", str(out))
    lock = out / ".train.lock"
    deadline = time.monotonic() + 60
    while not (lock.is_file() and lock.read_text().strip()) and first.poll() is None:
        assert time.monotonic() < deadline, "the first training never took its folder's lock"
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    second = _bench(*argv, "--steps", "4", "--out", str(out))
    second_out, second_err = second.communicate(timeout=120)
    first_out, first_err = first.communicate(timeout=300)

    assert second.returncode == 2 and first.returncode == 0, (second_err, first_err)
    assert f"is in use by process {first.pid}" in second_err and "Traceback" not in second_err
    log = (out / "train_log.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in log] == list(range(1, 61))  # one run's rows, in order
    assert sorted(p.name for p in out.glob("ckpt-*")) == ["ckpt-000060.keras"]
    # the same processes show the quiet start-up and log-friendly progress of a non-terminal stderr
    for err in (first_err, second_err):
        assert "absl::InitializeLog" not in err and "oneDNN" not in err
    assert "\r" not in first_err and "train: step 60/60 (100%)" in first_err


# ------------------------------------------------------------------------------------ helper contracts


def test_exclusive_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    with atomic.exclusive(tmp_path / "job", "the job folder"):
        assert (tmp_path / ".job.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match=f"the job folder is in use by process {os.getpid()}"):
            with atomic.exclusive(tmp_path / "job", "the job folder"):
                pass
    assert not (tmp_path / ".job.lock").exists()  # a finished holder leaves nothing behind
    with atomic.exclusive(tmp_path / "job", "the job folder"):
        pass


def test_an_exclusive_lock_taken_on_a_file_removed_meanwhile_is_taken_again_on_the_path(
    tmp_path, monkeypatch
):
    """The holder removes its lock file as it finishes: a process that opened that file just before locks
    an unlinked inode, sees it is no longer the path's and locks the path's file instead (so two processes
    never both hold 'the' lock on two different files)."""
    real_open, opened = open, []

    def open_then_lose_the_race(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        if not opened:  # the first open: the file is unlinked and made anew before we lock it
            opened.append(path)
            os.unlink(path)
            Path(path).write_text("")
        return handle

    monkeypatch.setattr("builtins.open", open_then_lose_the_race)
    with atomic.exclusive(tmp_path / "job", "the job folder"):
        monkeypatch.setattr("builtins.open", real_open)
        assert (tmp_path / ".job.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(UserError, match="in use by process"):
            with atomic.exclusive(tmp_path / "job", "the job folder"):
                pass
    assert len(opened) == 1


def test_replaced_folder_swaps_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.replaced_folder(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").is_file()
    with atomic.replaced_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


@pytest.mark.parametrize(
    ("make", "folder", "needle"),
    [
        (lambda t: t / "f" / "x", None, "is a file, not a folder"),
        (lambda t: t / "f", True, "is a file, not a folder"),
        (lambda t: t / "d", False, "is a folder"),
        (lambda t: UNWRITABLE / "x", None, "cannot write in"),
    ],
)
def test_check_writable_refuses_what_cannot_be_written(tmp_path, make, folder, needle):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match=needle):
        atomic.check_writable(make(tmp_path), "--out", folder=folder)
    assert (
        atomic.check_writable(tmp_path / "new" / "deeper", "--out", folder=True)
        == tmp_path / "new" / "deeper"
    )
    assert not (tmp_path / "new").exists()


def test_tensorflow_start_up_lines_hidden_but_errors_and_python_warnings_kept():
    printed = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795611642.186621    8784 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1795611819.313685   11202 cpu_feature_guard.cc:227] This binary is optimized\n"
        "To enable the following instructions: AVX2 FMA, rebuild TensorFlow with the appropriate flags.\n"
        "W0000 00:00:1795611819.313685   11202 gpu_device.cc:1] Cannot dlopen some GPU libraries.\n"
        "/x/y.py:3: DeprecationWarning: old call\n"
        "E0000 00:00:1795611819.313685   11202 cuda_dnn.cc:8] Unable to register cuDNN factory\n"
    )
    kept = filter_lines(printed, 2).splitlines()
    assert kept == [
        "/x/y.py:3: DeprecationWarning: old call",
        "E0000 00:00:1795611819.313685   11202 cuda_dnn.cc:8] Unable to register cuDNN factory",
    ]
    assert filter_lines(printed, 0) == printed
    assert "gpu_device" in filter_lines(printed, 1) and "oneDNN" not in filter_lines(printed, 1)


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_in_a_log(monkeypatch):
    log = io.StringIO()
    bar = progress_module.progress_bar(4, desc="predict", unit="img", stream=log)
    assert isinstance(bar, progress_module.LogLines)
    bar.interval = 0.0
    for _ in range(4):
        bar.set_postfix(loss="0.5")
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 5  # one per update (interval 0) and the last
    assert lines[-1].startswith("predict: img 4/4 (100%)") and lines[-1].endswith("loss=0.5")
    assert all(" elapsed" in line for line in lines[:-1]) and ", done in " in lines[-1]
    assert all(", ETA " in line for line in lines[:3]) and "ETA" not in lines[-1]  # done: no ETA left
    assert "img/s" not in lines[-1]  # one throughput figure: the command's, on the next line

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tqdm import tqdm

    bar = progress_module.progress_bar(4, desc="predict", unit="img", stream=Terminal())
    assert isinstance(bar, tqdm)
    bar.close()
    assert not isinstance(progress_module.progress_bar(4, desc="x", unit="y", enabled=False), tqdm)


def test_progress_lines_give_the_time_left_at_the_measured_rate(monkeypatch):
    clock = iter([0.0, 10.0, 10.0])  # created at 0; after 10 s, 5 of 65 steps done: 12 steps a minute
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    bar = progress_module.LogLines(65, desc="train", unit="step", interval=5.0, stream=log)
    bar.update(5)
    assert log.getvalue().strip() == "train: step 5/65 (8%), 0.50 step/s, 10 s elapsed, ETA 2 min 00 s"
    assert progress_module.duration(3725) == "1 h 02 min"


def test_two_predictions_into_one_out_at_once_are_refused(ctx, tmp_path, capsys):
    from bench.common.atomic import exclusive

    out = tmp_path / "preds"
    with exclusive(out, "held by another run"):  # what a second `bench predict --out preds` meets
        assert main(_predict_argv(ctx, out, "--no-progress")) == 2
    err = capsys.readouterr().err
    assert f"prediction folder {out} is in use by process" in err and not out.exists()
    assert main(_predict_argv(ctx, out, "--no-progress")) == 0  # free again once the other has finished
