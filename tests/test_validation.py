"""Validation during training: the exact evaluator on arrays, its logs, curve and best checkpoint."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
from bench.evaluation import evaluate  # noqa: E402
from bench.inference.predict import write_predictions  # noqa: E402
from bench.sources import keras_checkpoint as ckpt  # noqa: E402  (after the TensorFlow check)
from bench.sources.opener import open_checkpoint  # noqa: E402
from bench.training.folder import BEST_CHECKPOINT  # noqa: E402
from bench.training.recipes import Recipe  # noqa: E402
from bench.training.train import RunOptions, train  # noqa: E402
from bench.training.train_log import VAL_CURVE  # noqa: E402
from bench.training.validate import Validator  # noqa: E402

MODEL = "tests.tiny_model:tiny"


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory):
    """8 steps with validation every 3 (and at the end): rows at steps 3, 6 and 8."""
    out = tmp_path_factory.mktemp("val_run")
    recipe = Recipe(model=MODEL, steps=8, batch=2, crop=(64, 128), lr=0.05, val_every=3)
    path = train(recipe, tiny_dataset, out, run=RunOptions(progress=False))
    with (out / "val_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    return out, path, rows


@pytest.mark.slow
def test_validation_in_the_loop_equals_bench_evaluate_on_written_predictions(tiny_dataset, run, tmp_path):
    out, path, rows = run
    assert [int(r["step"]) for r in rows] == [3, 6, 8]
    from data.cityscapes import list_samples

    samples = list_samples(tiny_dataset, "val", require_images=True)
    write_predictions(open_checkpoint(path), samples, tmp_path / "pred", progress=False)
    from_files = evaluate(tiny_dataset, "val", tmp_path / "pred", workers=1)
    assert float(rows[-1]["miou"]) == from_files.miou  # the last validation scored the final weights
    assert float(rows[-1]["iiou"]) == from_files.iiou and int(rows[-1]["n_images"]) == 3
    model = open_checkpoint(path).keras
    in_memory = Validator(tiny_dataset)(model)
    assert repr(in_memory.to_cityscapes_dict()) == repr(from_files.to_cityscapes_dict())
    assert (in_memory.confusion == from_files.confusion).all() and from_files.miou > 0


@pytest.mark.slow
def test_validation_keeps_the_best_checkpoint_draws_the_curve_and_logs_tensorboard(run):
    out, _, rows = run
    mious = [float(r["miou"]) for r in rows]
    best = ckpt.read_metadata(out / BEST_CHECKPOINT)
    assert best["val_miou"] == max(mious) and best["val_step"] == int(rows[mious.index(max(mious))]["step"])
    assert [p.name for p in ckpt.list_checkpoints(out)][-1] == "ckpt-000008.keras"  # best.keras is extra
    with Image.open(out / VAL_CURVE) as im:
        assert im.format == "PNG" and im.size == (800, 450)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"loss", "val/miou"} <= set(events.Tags()["tensors"])
    logged = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors("val/miou")]
    assert logged == [(int(r["step"]), pytest.approx(float(r["miou"]), rel=1e-6)) for r in rows]


@pytest.mark.slow
def test_resumed_run_keeps_comparing_with_the_best_so_far(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    recipe = Recipe(model=MODEL, steps=2, batch=2, crop=(64, 128), lr=0.05, val_every=2)
    train(recipe, tiny_dataset, out, run=RunOptions(progress=False))
    first = ckpt.read_metadata(out / BEST_CHECKPOINT)["val_miou"]
    train(replace(recipe, steps=4), tiny_dataset, out, run=RunOptions(resume=True, progress=False))
    with (out / "val_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4]  # the first run's row kept, the new one appended
    best = ckpt.read_metadata(out / BEST_CHECKPOINT)
    assert best["val_miou"] == max(first, float(rows[1]["miou"]))
