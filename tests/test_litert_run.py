"""LiteRT files and published weights by name through `open_checkpoint`, the prediction loop and
`bench run`: the outputs the sinks get are the LiteRT source's own, and rows say the runtime."""

from __future__ import annotations

import argparse
import types

import numpy as np
import pytest

from bench.evaluation.png import read_png
from bench.sources import weights
from bench.sources.litert_runtime import LiteRTModel
from bench.sources.opener import open_checkpoint
from data.cityscapes import list_samples
from data.errors import UserError
from tests.tiny_litert import INPUT, convert, per_pixel


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    """{"logits": float per-pixel model, "argmax": its arg-max}, saved under names without .tflite: they
    are recognised by content."""
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow()
    import keras

    folder = tmp_path_factory.mktemp("litert_run")
    logits = per_pixel(keras, tf, INPUT, 19, seed=3)
    argmax = keras.Model(logits.input, keras.layers.Lambda(lambda t: tf.argmax(t, -1))(logits.output))
    return {
        "logits": convert(tf, logits, folder / "logits.bin"),
        "argmax": convert(tf, argmax, folder / "argmax.model"),
        "int8": convert(tf, logits, folder / "int8.tflite", quantised_input=tf.uint8),
    }


class Recorder:
    """A sink keeping what it is handed."""

    def reset(self):
        self.frames = []

    def process(self, sample, train_ids, logits):
        self.frames.append((sample.key, train_ids, logits))

    def evaluate(self):
        return len(self.frames)


@pytest.mark.parametrize("kind", ["logits", "argmax"])
def test_the_loop_hands_the_sinks_what_the_litert_source_computes(tflite, tiny_dataset, kind):
    from bench.inference.loop import predict_frames

    opened = open_checkpoint(tflite[kind])
    assert opened.keras is None and opened.outputs == ("logits" if kind == "logits" else "train_ids")
    assert opened.metadata["runtime"] == "litert" and opened.metadata["model"] == tflite[kind].stem
    samples = list_samples(tiny_dataset, "val", require_images=True)
    sink = Recorder()
    predicted = predict_frames(opened, samples, sinks=[sink], progress=False)
    assert predicted.results == (len(samples),) and predicted.stats["runtime"].startswith("litert ")
    direct = LiteRTModel(tflite[kind])
    for sample, (key, train_ids, logits) in zip(samples, sink.frames, strict=True):
        expected_ids, expected_logits = direct.frame_outputs(read_png(sample.image))
        assert key == sample.key and train_ids.shape == (64, 128)
        np.testing.assert_array_equal(train_ids, expected_ids)
        if kind == "logits":
            np.testing.assert_array_equal(logits, expected_logits)
        else:
            assert logits is None


def test_a_litert_model_refuses_only_the_settings_it_cannot_honour(tflite, tiny_dataset):
    from bench.inference.loop import predict_frames
    from models.inference_modes import InferenceSettings

    with pytest.raises(UserError, match="LiteRT model, run in its own dtypes"):
        open_checkpoint(tflite["logits"], precision="bf16")
    samples = list_samples(tiny_dataset, "val", require_images=True)
    with pytest.raises(UserError, match="only its arg-max"):
        predict_frames(
            open_checkpoint(tflite["argmax"]), samples, InferenceSettings(flip=True), progress=False
        )
    sink = Recorder()  # a logits model averages scales and flips like any other
    settings = InferenceSettings(mode="multiscale", scales=(0.5, 1.0), flip=True)
    predict_frames(open_checkpoint(tflite["logits"]), samples[:1], settings, sinks=[sink], progress=False)
    assert sink.frames[0][1].shape == (64, 128) and sink.frames[0][2].shape == (64, 128, 19)


def run_in(folder, dataset, checkpoint, **options):
    """`bench run` of `checkpoint` on `dataset`, everything it writes under `folder`."""
    from bench.run import run_benchmark

    return run_benchmark(
        None,
        dataset=str(dataset),
        checkpoint=str(checkpoint),
        readme=None,
        results_csv=folder / "results.csv",
        runs_dir=folder / "runs",
        checkpoint_root=folder.parent / "checkpoints",
        progress=False,
        **options,
    )


def test_bench_run_scores_a_dataset_with_a_tflite_and_the_row_says_litert(tflite, tiny_dataset, tmp_path):
    report = run_in(tmp_path / "run", tiny_dataset, tflite["argmax"])
    row = report.row
    assert row["model"] == "argmax" and row["runtime"].startswith("litert ") and row["precision"] == "fp32"
    assert 0 <= row["miou"] <= 100 and row["n_images"] == 3


def test_bench_run_of_an_int8_file_says_int8_where_it_says_the_precision(
    tflite, tiny_dataset, tmp_path, capsys
):
    report = run_in(tmp_path / "run", tiny_dataset, tflite["int8"])
    assert "predict and evaluate: val split (3 frames of 64x128, partial), mode whole, int8;" in (
        capsys.readouterr().out
    )
    assert report.row["precision"] == "int8"


def _served_entry(path, monkeypatch, tmp_path):
    """A weights entry for `path` (a file:// URL) put into the table, and the default folder in tmp."""
    from bench.sources import download
    from bench.sources.convert.published import sha256

    entry = weights.Weights(
        name="tiny-litert",
        url=path.as_uri(),
        licence="MIT",
        model="litert",
        sha256=sha256(path),
        references=("deeplab_edgetpu-slim_cityscapes/val-os32",),
    )
    monkeypatch.setattr(weights, "OTHERS", (*weights.OTHERS, entry))
    monkeypatch.setattr(download, "WEIGHTS_ROOT", tmp_path / "weights")
    return entry


def test_a_weights_name_opens_the_downloaded_file(tflite, tmp_path, monkeypatch):
    entry = _served_entry(tflite["argmax"], monkeypatch, tmp_path)
    opened = open_checkpoint("tiny-litert")
    assert opened.metadata["checkpoint"] == str(tmp_path / "weights" / entry.file_name)
    assert opened.metadata["weights"] == "tiny-litert" and opened.metadata["model"] == "tiny-litert"


def test_a_run_of_published_weights_names_their_reference_row(tflite, tiny_dataset, tmp_path, monkeypatch):
    from bench.sources.download import weights_file

    entry = _served_entry(tflite["argmax"], monkeypatch, tmp_path)
    report = run_in(tmp_path / "run", tiny_dataset, weights_file(entry, tmp_path / "w", progress=False))
    assert (
        report.row["model"] == "tiny-litert"
        and report.row["notes"] == "published weights tiny-litert (litert)"
    )
    assert report.row["reference"] == "deeplab_edgetpu-slim_cityscapes/val-os32"


def test_bench_run_weights_resolves_the_name_in_the_weights_dir(tflite, tmp_path, monkeypatch):
    import bench.run

    entry = _served_entry(tflite["argmax"], monkeypatch, tmp_path)
    called = {}

    def fake_run(model, **kwargs):
        called.update(kwargs)
        return types.SimpleNamespace(row={})

    monkeypatch.setattr(bench.run, "run_benchmark", fake_run)
    parser = argparse.ArgumentParser()
    bench.run.add_arguments(parser)
    bench.run.run(parser.parse_args(["--weights", "tiny-litert", "--weights-dir", str(tmp_path / "mine")]))
    assert called["checkpoint"] == str(tmp_path / "mine" / entry.file_name)
    assert (tmp_path / "mine" / entry.file_name).read_bytes() == tflite["argmax"].read_bytes()
    for argv, message in (
        (["--weights-dir", str(tmp_path)], "add --weights"),
        (["--weights", "tiny-litert", "--checkpoint", "x.keras"], "give one of them"),
        (["--weights", "no-such"], "unknown weights 'no-such'"),
    ):
        with pytest.raises(UserError, match=message):
            bench.run.run(parser.parse_args(argv))


def test_bench_predict_and_submit_take_a_tflite(tflite, tiny_dataset, tmp_path):
    import zipfile

    from bench.cli import main
    from bench.submission.writer import entry_name
    from data.labels import to_label_ids

    direct = LiteRTModel(tflite["argmax"])
    samples = list_samples(tiny_dataset, "val", require_images=True)
    expected = {s.key: to_label_ids(direct.frame_outputs(read_png(s.image))[0]) for s in samples}
    out = tmp_path / "pred"
    argv = ["--checkpoint", str(tflite["argmax"]), "--dataset", str(tiny_dataset), "--split", "val"]
    assert main(["predict", *argv, "--out", str(out), "--no-progress"]) == 0
    for key, labels in expected.items():
        np.testing.assert_array_equal(read_png(out / f"{key}_leftImg8bit.png"), labels)
    zipped = tmp_path / "submission.zip"
    assert main(["submit", *argv, "--out", str(zipped), "--no-progress"]) == 0
    with zipfile.ZipFile(zipped) as archive:
        for key, labels in expected.items():
            np.testing.assert_array_equal(read_png_bytes(archive.read(entry_name(key))), labels)


def read_png_bytes(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def test_perf_model_times_a_tflite_checkpoint(tflite, capsys):
    from bench.cli import main

    assert (
        main(["perf", "model", "--checkpoint", str(tflite["argmax"]), "--size", "48x64", "--repeats", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "argmax (litert " in out and "24x32 windows) on a 48x64 frame" in out and "CPU s median" in out
    assert main(["perf", "model", "pspnet@64x64", "--checkpoint", str(tflite["argmax"])]) == 2
    assert "give no MODEL@HxW cases" in capsys.readouterr().err


def test_bench_run_keeps_the_ground_truth_where_gt_cache_says(tflite, tiny_dataset, tmp_path):
    import argparse

    from bench.arguments import gt_cache_from_arguments
    from bench.evaluation.gt_cache import SUFFIX, GTCache
    from bench.run import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    folder = tmp_path / "gt-cache"
    assert gt_cache_from_arguments(parser.parse_args(["--gt-cache", str(folder)])) == GTCache(folder)
    assert gt_cache_from_arguments(parser.parse_args(["--no-gt-cache"])) is None
    for cache, name in ((None, "uncached"), (GTCache(folder), "cached")):
        run_in(tmp_path / name, tiny_dataset, tflite["logits"], gt_cache=cache)
        assert len(list(folder.glob(f"*{SUFFIX}"))) == (0 if cache is None else 3)
