"""Trainer and prediction end to end, with the plugin model `tests.tiny_model:tiny` on tiny frames."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from data.cityscapes import list_samples
from data.labels import LABEL_TO_TRAIN, TRAIN_TO_LABEL
from tests.cityscapes_files import write_dataset
from tests.keras_helpers import model_precision

tf = pytest.importorskip("tensorflow")
from bench.inference.predict import write_predictions  # noqa: E402
from bench.sources import keras_checkpoint as ckpt  # noqa: E402  (after the TensorFlow check)
from bench.sources.opener import open_checkpoint  # noqa: E402
from bench.training.recipes import Recipe  # noqa: E402
from bench.training.train import RunOptions, train  # noqa: E402
from models.inference_modes import InferenceSettings, frame_logits, slide_windows  # noqa: E402

MODEL = "tests.tiny_model:tiny"
TRAIN_IDS_AS_LABEL_IDS = set(TRAIN_TO_LABEL[:19].tolist())
QUIET = RunOptions(progress=False)


def load_checkpoint(path, **kwargs):
    """(Keras logits model, metadata) of `open_checkpoint`."""
    opened = open_checkpoint(path, **kwargs)
    return opened.keras, opened.metadata


def predict(checkpoint, root, split, out, *, limit=None, precision="fp32", progress=False):
    """`bench predict`'s library path: open, list the split, write the PNGs; the figures."""
    samples = list_samples(root, split, require_images=True)[:limit]
    model = open_checkpoint(checkpoint, precision=precision, fold_bn=True)
    settings = InferenceSettings(precision=precision)
    return write_predictions(model, samples, out, settings, split=split, progress=progress).stats


def train_args(root, out, steps, *extra):
    return [
        "train",
        "--model",
        MODEL,
        "--dataset",
        str(root),
        "--steps",
        str(steps),
        "--batch",
        "2",
        "--crop",
        "64x128",
        "--lr",
        "0.05",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two training frames a tiny model can overfit, two validation frames."""
    return write_dataset(tmp_path_factory.mktemp("cs"), train=2, val=2, seed=1)


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory):
    """A training folder written by the CLI: 40 steps, checkpoints every 20, a log row every 5."""
    out = tmp_path_factory.mktemp("run")
    assert main(train_args(root, out, 40, "--checkpoint-every", "20", "--log-every", "5")) == 0
    return out


@pytest.fixture(scope="module")
def model(trained):
    return load_checkpoint(trained)[0]


def first_frame(root):
    from data.pipeline import eval_dataset

    return next(iter(eval_dataset(list_samples(root, "val", require_images=True), with_labels=False)))


@pytest.mark.slow
def test_training_loss_falls_and_accuracy_beats_majority_class(root, trained, tmp_path):
    with (trained / "train_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(5, 41, 5))
    assert float(rows[-1]["loss"]) < 0.5 * float(rows[0]["loss"])

    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained),
                "--dataset",
                str(root),
                "--split",
                "train",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    hits = valid = 0
    counts = np.zeros(256, np.int64)
    for sample in list_samples(root, "train"):
        gt = LABEL_TO_TRAIN[np.asarray(Image.open(sample.label_ids))]
        pred = LABEL_TO_TRAIN[np.asarray(Image.open(tmp_path / f"{sample.key}_leftImg8bit.png"))]
        mask = gt != 255
        hits += int(np.sum(pred[mask] == gt[mask]))
        valid += int(mask.sum())
        counts += np.bincount(gt[mask], minlength=256)
    accuracy, majority = hits / valid, counts.max() / valid
    assert accuracy > majority + 0.15, f"accuracy {accuracy:.2f} vs majority class {majority:.2f}"


@pytest.mark.slow
def test_checkpoint_records_model_and_loads_the_trained_weights(root, trained, model):
    import keras

    path = ckpt.resolve(trained)
    assert path.name == "ckpt-000040.keras"
    assert [p.name for p in ckpt.list_checkpoints(trained)] == ["ckpt-000020.keras", "ckpt-000040.keras"]
    meta = ckpt.read_metadata(path)
    assert (meta["model"], meta["preset"], meta["options"], meta["steps"], meta["num_classes"]) == (
        MODEL,
        None,
        {},
        40,
        19,
    )
    image = first_frame(root)
    saved = keras.models.load_model(path, compile=False)  # the file is also a plain Keras model
    np.testing.assert_allclose(model(image).numpy(), saved(image)["logits"].numpy(), atol=1e-5)
    fresh = ckpt.rebuild(meta, aux_head=True)
    assert not np.allclose(model(image).numpy(), fresh(image)["logits"].numpy(), atol=1e-3)


def restored_state(path, steps):
    """Weights, optimizer variables and iteration count as a resumed run would see them."""
    from bench.training.train_step import make_optimizer

    net = ckpt.rebuild(ckpt.read_metadata(path))
    optimizer = make_optimizer(0.05, steps)
    net.compile(optimizer=optimizer)
    optimizer.build(net.trainable_variables)
    ckpt.load_weights(net, path)
    return [v.numpy() for v in net.weights + optimizer.variables], int(optimizer.iterations.numpy())


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(root, tmp_path, monkeypatch):
    from data import pipeline

    recipe = Recipe(model=MODEL, steps=8, batch=2, crop=(48, 96), lr=0.05)
    straight = train(recipe, root, tmp_path / "straight", run=QUIET)
    real = pipeline.train_dataset

    def interrupted_after_four(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 4:
                raise KeyboardInterrupt  # what Ctrl-C raises in the training loop
            yield batch

    out = tmp_path / "interrupted"
    monkeypatch.setattr(pipeline, "train_dataset", interrupted_after_four)
    assert main(train_args(root, out, 8, "--crop", "48x96")) == 130
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["ckpt-000004.keras"]
    assert ckpt.read_metadata(out / "ckpt-000004.keras")["steps"] == 4

    monkeypatch.setattr(pipeline, "train_dataset", real)
    assert main(train_args(root, out, 8, "--crop", "48x96", "--resume")) == 0
    resumed = ckpt.resolve(out)
    assert resumed.name == "ckpt-000008.keras" and ckpt.read_metadata(resumed)["steps"] == 8
    (expected, expected_steps), (got, got_steps) = restored_state(straight, 8), restored_state(resumed, 8)
    assert expected_steps == got_steps == 8
    # Equal weights and momenta only if the optimizer state and the input stream both carried over.
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with (out / "train_log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [8]

    # Resuming with a larger --steps continues the count (the poly schedule stretches to the new end).
    assert main(train_args(root, out, 12, "--crop", "48x96", "--resume")) == 0
    assert restored_state(ckpt.resolve(out), 12)[1] == 12


@pytest.mark.slow
def test_mixed_precision_and_xla_path_trains_and_predicts(root, tmp_path):
    """What a GPU run does (bfloat16 compute + XLA), exercised on the CPU so CI covers the code path."""
    import keras

    recipe = Recipe(model=MODEL, steps=3, batch=2, crop=(32, 64), lr=0.05)
    path = train(recipe, root, tmp_path / "run", run=RunOptions(progress=False, accelerate=True))
    assert ckpt.read_metadata(path)["accelerated"] is True
    assert keras.mixed_precision.global_policy().name == "float32"  # the global policy is restored
    model, _ = load_checkpoint(path)
    logits = model(first_frame(root))
    assert logits.dtype == "float32" and np.isfinite(logits.numpy()).all()


@pytest.mark.slow
def test_registry_model_checkpoint_rebuilds_and_folds_for_prediction(tiny_dataset, tmp_path):
    """pspnet (custom pooling and resize layers, aux head) through train, save, rebuild and BN folding."""
    recipe = Recipe(model="pspnet", preset="tiny", steps=1, batch=2, crop=(64, 64), lr=0.01)
    path = train(recipe, tiny_dataset, tmp_path, run=QUIET)
    assert ckpt.read_metadata(path)["preset"] == "tiny"
    image = first_frame(tiny_dataset)
    plain, _ = load_checkpoint(path)
    folded, meta = load_checkpoint(path, fold_bn=True)
    assert meta["folded_bn"] and len(folded.layers) < len(plain.layers)
    expected = plain(image).numpy()
    assert expected.shape == (1, *image.shape[1:3], 19)
    np.testing.assert_allclose(folded(image).numpy(), expected, rtol=1e-3, atol=1e-3)


def test_diverging_training_stops_with_a_clear_message(root, tmp_path, capsys):
    assert main(train_args(root, tmp_path, 30, "--crop", "32x64", "--lr", "1e12")) == 2
    assert "diverged; lower --lr" in capsys.readouterr().err


@pytest.mark.slow
def test_train_refuses_to_overwrite_or_resume_nothing(root, trained, tmp_path, capsys):
    assert main(train_args(root, trained, 50)) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(train_args(root, tmp_path, 5, "--resume")) == 2
    assert "holds no ckpt" in capsys.readouterr().err
    assert main(train_args(root, trained, 50, "--resume", "--model-opt", "width=8")) == 2
    assert "trained as model=" in capsys.readouterr().err


@pytest.mark.parametrize(
    "length,window,stride", [(64, 32, 21), (100, 30, 20), (7, 7, 3), (5, 9, 4), (1000, 713, 476)]
)
def test_slide_windows_cover_the_frame_with_full_windows(length, window, stride):
    windows = slide_windows(length, window, stride)
    covered = np.zeros(length, bool)
    for start, end in windows:
        assert end - start == min(window, length) and 0 <= start and end <= length
        covered[start:end] = True
    assert covered.all() and windows[-1][1] == length


def test_whole_and_slide_agree_when_the_window_covers_the_frame(root, model):
    image = first_frame(root)
    forward = tf.function(model)
    whole = frame_logits(forward, image, mode="whole")
    assert whole.shape == (64, 128, 19)
    for crop in ((64, 128), (100, 300)):
        np.testing.assert_allclose(frame_logits(forward, image, mode="slide", crop=crop), whole, atol=1e-5)
    small = frame_logits(forward, image, mode="slide", crop=(32, 64), stride=(16, 32))
    assert small.shape == whole.shape and not np.allclose(small, whole, atol=1e-5)


def test_multiscale_with_scale_one_and_no_flip_equals_whole(root, model):
    image = first_frame(root)
    forward = tf.function(model)
    whole = frame_logits(forward, image, mode="whole")
    np.testing.assert_allclose(
        frame_logits(forward, image, mode="multiscale", scales=(1.0,)), whole, atol=1e-5
    )
    multi = frame_logits(forward, image, mode="multiscale", scales=(0.5, 1.0, 1.5), flip=True)
    assert multi.shape == whole.shape and not np.allclose(multi, whole, atol=1e-3)


def cityscapes_scripts_miou(gt_root, pred_dir, monkeypatch) -> float:
    """mIoU from cityscapesScripts itself, the prediction files found by its own name rule."""
    from bench.evaluation.reference import evaluate_img_lists, reference_module

    ev = reference_module()
    monkeypatch.setattr(ev.args, "predictionPath", str(pred_dir))
    monkeypatch.setattr(ev.args, "predictionWalk", None)
    gt = [str(s.label_ids) for s in list_samples(gt_root, "val")]
    predictions = [ev.getPrediction(ev.args, g) for g in gt]
    assert all(p.startswith(str(pred_dir)) for p in predictions)
    return evaluate_img_lists(predictions, gt)["averageScoreClasses"]


@pytest.mark.slow
def test_written_predictions_evaluate_with_cityscapes_scripts(root, trained, tmp_path, monkeypatch):
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained / "ckpt-000040.keras"),
                "--dataset",
                str(root),
                "--out",
                str(out),
                "--colorize",
                "--no-progress",
            ]
        )
        == 0
    )
    samples = list_samples(root, "val")
    assert sorted(p.name for p in out.glob("*.png")) == [f"{s.key}_leftImg8bit.png" for s in samples]
    assert sorted(p.name for p in (out / "color").iterdir()) == [f"color_{s.key}.png" for s in samples]
    for sample in samples:
        png = Image.open(out / f"{sample.key}_leftImg8bit.png")
        assert png.mode == "L" and png.size == (128, 64)
        assert set(np.unique(np.asarray(png)).tolist()) <= TRAIN_IDS_AS_LABEL_IDS
        assert Image.open(out / "color" / f"color_{sample.key}.png").mode == "RGB"
    stats = json.loads((out / "predict_stats.json").read_text())
    assert stats["n_images"] == 2 and stats["images_per_s"] > 0 and stats["peak_memory_mb"] > 0
    assert 0 < stats["latency_p50_ms"] <= stats["latency_p95_ms"] and stats["folded_bn"] is True
    miou = cityscapes_scripts_miou(root, out, monkeypatch)
    assert 0.3 < miou <= 1.0
    from bench.evaluation import evaluate

    assert evaluate(root, "val", out, workers=1).miou == pytest.approx(miou, abs=1e-9)


@pytest.mark.parametrize(
    "mode_args",
    [["--mode", "slide", "--crop", "32x64"], ["--mode", "multiscale", "--scales", "0.75,1.25", "--flip"]],
)
@pytest.mark.slow
def test_predict_modes_write_label_id_pngs(root, trained, tmp_path, mode_args):
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained),
                "--dataset",
                str(root),
                "--out",
                str(tmp_path),
                "--limit",
                "1",
                "--no-progress",
                *mode_args,
            ]
        )
        == 0
    )
    (png,) = tmp_path.glob("*.png")
    written = np.asarray(Image.open(png))
    stats = json.loads((tmp_path / "predict_stats.json").read_text())
    assert stats["mode"] == mode_args[1]
    # the PNG is this mode's arg-max of this model, mapped to label IDs (a constant image would not do)
    settings = {k: stats[k] for k in ("mode", "scales", "flip", "crop", "stride")}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    forward = open_checkpoint(trained, fold_bn=True).logits_function()
    expected = TRAIN_TO_LABEL[np.argmax(frame_logits(forward, first_frame(root), **settings), axis=-1)]
    assert len(np.unique(expected)) > 1
    np.testing.assert_array_equal(written, expected)


def _with_input_spec(trained, out, spec) -> Path:
    """A copy of the trained checkpoint whose metadata records another input normalisation."""
    path = ckpt.resolve(trained)
    metadata = ckpt.read_metadata(path)
    net = ckpt.rebuild(metadata, aux_head=True)
    ckpt.load_weights(net, path)
    return ckpt.save(net, out / "ckpt.keras", {**metadata, "input": spec.to_dict()})


@pytest.mark.slow
def test_prediction_applies_the_checkpoints_own_input_normalisation(root, trained, tmp_path):
    from data.normalization import IMAGENET_RGB, InputSpec

    same = InputSpec(
        mean=tuple(m / 255 for m in IMAGENET_RGB.mean),
        std=tuple(s / 255 for s in IMAGENET_RGB.std),
        value_range=1,
    )
    swapped = InputSpec(mean=IMAGENET_RGB.mean[::-1], std=IMAGENET_RGB.std[::-1], channel_order="BGR")
    outputs = {}
    for name, spec in [("default", None), ("same", same), ("swapped", swapped)]:
        source = trained if spec is None else _with_input_spec(trained, tmp_path / f"ckpt_{name}", spec)
        stats = predict(source, root, "val", tmp_path / name, limit=2)
        assert stats["input"] == (spec or IMAGENET_RGB).to_dict()
        outputs[name] = [np.asarray(Image.open(p)) for p in sorted((tmp_path / name).glob("*.png"))]
    # the same normalisation written another way predicts the same; swapped colour channels do not
    agree = np.mean([np.mean(a == b) for a, b in zip(outputs["default"], outputs["same"], strict=True)])
    differ = np.mean([np.mean(a != b) for a, b in zip(outputs["default"], outputs["swapped"], strict=True)])
    assert agree > 0.999 and differ > 0.01


@pytest.mark.slow
def test_predict_evaluate_scores_from_arrays_equal_bench_evaluate_on_the_written_files(
    root, trained, tmp_path
):
    out = tmp_path / "pred"
    args = ["--checkpoint", str(trained), "--dataset", str(root), "--out", str(out), "--no-progress"]
    assert main(["predict", *args, "--evaluate", "--json", str(tmp_path / "streamed.json")]) == 0
    files = tmp_path / "files.json"
    assert main(["evaluate", "--gt", str(root), "--pred", str(out), "--boundary", "--json", str(files)]) == 0
    streamed = json.loads((tmp_path / "streamed.json").read_text())
    calibration = streamed.pop("calibration")  # from the logits: only the loop has them
    assert streamed == json.loads(files.read_text())  # IoU and Boundary IoU alike from arrays and files
    assert calibration["available"] and calibration["temperatureSource"] == "fit"
    assert streamed["nImages"] == 2 and streamed["averageScoreClasses"] > 0.3
    stats = json.loads((out / "predict_stats.json").read_text())
    assert stats["precision"] == "fp32" and stats["batch"] == 1 and stats["input_size"] == "64x128"
    assert stats["device"].startswith(("CPU: ", "GPU: ")) and stats["threads"] >= 1 and stats["tensorflow"]


@pytest.mark.slow
def test_bf16_prediction_computes_in_bfloat16_and_agrees_with_fp32(root, trained, tmp_path):
    image = first_frame(root)
    fp32, meta32 = load_checkpoint(trained, fold_bn=True)
    bf16, meta16 = load_checkpoint(trained, fold_bn=True, precision="bf16")
    assert (meta32["precision"], meta16["precision"]) == ("fp32", "bf16")
    assert model_precision(fp32) == "fp32" and model_precision(bf16) == "bf16"
    assert all(w.dtype == "float32" for w in bf16.weights)  # the checkpoint's float32 weights, as they are
    a, b = fp32(image).numpy(), bf16(image).numpy()
    assert np.mean(a.argmax(-1) == b.argmax(-1)) > 0.99 and not np.array_equal(a, b)
    stats = predict(trained, root, "val", tmp_path / "bf16", precision="bf16")
    assert stats["precision"] == "bf16"
    (png, *_) = sorted((tmp_path / "bf16").glob("*.png"))
    assert set(np.unique(np.asarray(Image.open(png))).tolist()) <= TRAIN_IDS_AS_LABEL_IDS


def test_bf16_needs_a_checkpoint_that_names_its_model(root, tmp_path, capsys):
    import keras

    from tests.tiny_model import tiny

    path = tmp_path / "plain.keras"
    keras.Model.save(tiny(), path)
    args = ["--checkpoint", str(path), "--dataset", str(root), "--out", str(tmp_path / "p")]
    assert main(["predict", *args, "--precision", "bf16"]) == 2
    assert "--precision bf16 needs a checkpoint that names its registry model" in capsys.readouterr().err


@pytest.mark.slow
def test_perf_precision_prints_agreement_miou_difference_and_speed(root, trained, capsys):
    args = ["perf", "precision", "--checkpoint", str(trained), "--dataset", str(root), "--baseline"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    agreement = float(out.split("arg-max agreement bf16 vs fp32: ")[1].split("%")[0])
    assert 99.0 < agreement <= 100.0 and "target >= 99.5%" in out
    assert "baseline: fp32 on the input rounded to bfloat16 agrees on" in out
    assert "mIoU fp32 " in out and "speed bf16 / fp32 " in out
