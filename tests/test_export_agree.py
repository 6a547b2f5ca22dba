"""`bench export` and `bench agree` on a tiny pspnet at 64x128: round trips through ONNX Runtime, OpenVINO and
LiteRT agree with the Keras model, agreement figures match an independent numpy computation, bad inputs are
refused before any work and a failed check leaves nothing behind."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """A tiny pspnet checkpoint (random weights), and the same with its classifier bias shifted by a known
    vector (the shift, per channel, is returned). Classic stem and bins 1 and 3 (3 does not divide the
    feature maps: the adaptive pooling an export must get right): fewer ops to trace and convert."""
    from bench.sources.keras_checkpoint import save
    from models.registry import build

    folder = tmp_path_factory.mktemp("ckpt")
    options = {"stem": "classic", "bins": [1, 3]}
    metadata = {"model": "pspnet", "preset": "tiny", "options": options, "num_classes": 19, "steps": 0}
    model = build("pspnet", preset="tiny", aux_head=True, **options)  # as training saves it
    a = save(model, folder / "a.keras", metadata)
    classifier = model.get_layer("psp_head_classifier")
    kernel, bias = classifier.get_weights()
    shift = np.linspace(-0.5, 0.5, 19).astype(np.float32)
    classifier.set_weights([kernel, bias + shift])
    b = save(model, folder / "b.keras", metadata)
    return a, b, shift


def _keras_logits(path: Path, dataset: Path) -> tuple[list[np.ndarray], list[str]]:
    """Each val frame's logits by the Keras model itself (no loop, no sinks): the independent side."""
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples
    from data.pipeline import eval_dataset

    opened = open_checkpoint(path)
    samples = list_samples(dataset, "val", require_images=True)
    frames = eval_dataset(samples, with_labels=False, input_spec=opened.input_spec)
    return [np.asarray(opened.logits_function()(x))[0] for x in frames], [s.key for s in samples]


FORMATS = {"onnx": "onnx", "openvino": "xml", "litert": "tflite"}


def _export(checkpoint: Path, dataset: Path, folder: Path, fmt: str, *extra: str) -> dict:
    """`bench export` of `checkpoint` into its own `folder`: exit code, figures, what it printed."""
    folder.mkdir()
    out = folder / f"model.{FORMATS[fmt]}"
    args = [str(checkpoint), "--format", fmt, "--out", str(out), "--dataset", str(dataset), *extra]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", *args, "--json", str(folder.parent / f"{folder.name}.json")])
    figures = json.loads((folder.parent / f"{folder.name}.json").read_text()) if code == 0 else None
    return {"code": code, "out": out, "figures": figures, "printed": printed.getvalue()}


@pytest.fixture(scope="module")
def exports(checkpoints, tiny_dataset, tmp_path_factory) -> dict[str, dict]:
    """One export per format of the tiny checkpoint, shared by the tests that read or run the files (an
    export is the slow part: tracing and converting the graph)."""
    root = tmp_path_factory.mktemp("exports")
    return {fmt: _export(checkpoints[0], tiny_dataset, root / fmt, fmt) for fmt in FORMATS}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_round_trip_agrees_with_keras(fmt, exports, checkpoints, tiny_dataset, tmp_path):
    export = exports[fmt]
    out = export["out"]
    assert export["code"] == 0
    figures = export["figures"]
    assert figures["agreement"] >= 99.9 and figures["max_delta_logits"] < 1e-3
    assert "agree" in export["printed"]
    # the recipe travels with the file, in the format
    if fmt == "onnx":
        from bench.export.recipe import read_onnx

        recipe = read_onnx(out)
    elif fmt == "litert":
        recipe = json.loads(out.with_name("model.tflite.json").read_text())
    else:
        assert out.with_name("model.bin").is_file()
        recipe = None
    if recipe is not None:
        assert recipe["output"] == {"kind": "logits", "channels": list(range(19))}
        assert recipe["layout"] == "NHWC" and recipe["input"]["mean"] == [123.675, 116.28, 103.53]
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []  # no temp folder left
    # and the file is a model source: bench agree against the checkpoint through the loop
    assert main(["agree", str(checkpoints[0]), str(out), "--dataset", str(tiny_dataset), "--no-progress",
                 "--json", str(tmp_path / "a.json")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["agreement"] >= 99.9 and report["max_delta_logits"] < 1e-3
    assert abs(report["delta_miou"]) < 0.5


def test_agree_identical_models_is_total(checkpoints, tiny_dataset, tmp_path):
    a = str(checkpoints[0])
    csv = tmp_path / "agree.csv"
    args = [
        "agree",
        a,
        a,
        "--dataset",
        str(tiny_dataset),
        "--no-progress",
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert main([*args, "--csv", str(csv)]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["agreement"] == 100.0
    assert report["max_delta_logits"] == 0.0 and report["mean_delta_logits"] == 0.0
    assert report["delta_miou"] == 0.0 and report["n_images"] == 3
    assert report["a"]["class_iou"] == report["b"]["class_iou"]
    assert "agreement" in csv.read_text().splitlines()[0]


def test_agree_of_a_perturbed_model_matches_an_independent_computation(checkpoints, tiny_dataset, tmp_path):
    a, b, shift = checkpoints
    out = tmp_path / "r.json"
    assert (
        main(["agree", str(a), str(b), "--dataset", str(tiny_dataset), "--no-progress", "--json", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    la, keys = _keras_logits(a, tiny_dataset)
    lb, _ = _keras_logits(b, tiny_dataset)
    delta = np.concatenate([np.abs(x.astype(np.float64) - y).ravel() for x, y in zip(la, lb, strict=True)])
    same = np.concatenate([(x.argmax(-1) == y.argmax(-1)).ravel() for x, y in zip(la, lb, strict=True)])
    assert report["agreement"] == pytest.approx(100.0 * same.mean(), abs=1e-9)
    assert report["agreement"] < 100.0  # the shift moves some arg-maxes
    assert report["max_delta_logits"] == pytest.approx(delta.max(), abs=1e-5)
    assert report["mean_delta_logits"] == pytest.approx(delta.mean(), abs=1e-5)
    # a bias shift survives the bilinear resize unchanged: the deltas are the shift itself
    assert report["max_delta_logits"] == pytest.approx(float(np.abs(shift).max()), abs=1e-4)
    assert report["mean_delta_logits"] == pytest.approx(float(np.abs(shift).mean()), abs=1e-4)
    assert [f["frame"] for f in report["frames"]] == keys


@pytest.mark.slow
def test_agree_chunks_give_the_same_figures(checkpoints, tiny_dataset):
    """A memory budget of one frame per chunk: the same agreement and scores as one chunk."""
    from bench.agree.pairs import predict_pair
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples
    from models.inference_modes import DEFAULT_SETTINGS

    a, b = (open_checkpoint(p) for p in checkpoints[:2])
    samples = list_samples(tiny_dataset, "val", require_images=True)
    whole = predict_pair(a, b, samples, DEFAULT_SETTINGS, progress=False)
    chunked = predict_pair(a, b, samples, DEFAULT_SETTINGS, progress=False, budget=1)
    assert chunked.agreement.agreeing == whole.agreement.agreeing
    assert chunked.agreement.delta_max == whole.agreement.delta_max
    assert np.array_equal(chunked.scores[1].confusion, whole.scores[1].confusion)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "tflite", "--out", "m.tflite"], "--format 'tflite'"),
        (["--format", "litert", "--out", "m.tflite", "--precision", "int8"], "--calibration-frames"),
        (["--format", "onnx", "--out", "m.onnx", "--precision", "int8"], "not written for --format onnx"),
        (["--format", "onnx", "--out", "m.xml"], "*.onnx"),
        (["--format", "litert", "--out", "m.tflite", "--calibration-frames", "4"], "--precision int8"),
    ],
)
def test_export_refuses_bad_options(extra, message, checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(checkpoints[0]), *extra]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_an_unwritable_out(checkpoints, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(checkpoints[0]), "--format", "onnx", "--out", str(blocker / "m.onnx")]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.slow
def test_a_failed_check_leaves_nothing_behind(
    exports, checkpoints, tiny_dataset, tmp_path, capsys, monkeypatch
):
    """The writer copies the shared ONNX export into the hidden folder (what Keras' export writes there),
    the check runs it in ONNX Runtime with every pixel made wrong: exit 1 and nothing left behind."""
    import bench.export.check as check
    import bench.export.writers as writers

    real = check.runner

    def off_by_one(fmt, path):  # an export that gets every pixel wrong
        run = real(fmt, path)
        return lambda x: np.roll(run(x), 1, axis=-1)

    def copy_of_the_export(keras_model, fmt, path, recipe, **options):
        shutil.copyfile(exports["onnx"]["out"], path)
        return writers.files_of(fmt, path)

    monkeypatch.setattr(check, "runner", off_by_one)
    monkeypatch.setattr(writers, "write", copy_of_the_export)
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoints[0]), "--format", "onnx", "--out", str(out), "--dataset",
                 str(tiny_dataset)]) == 1  # fmt: skip
    assert "nothing written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_int8_litert_is_calibrated_and_measured(checkpoints, tiny_dataset, tmp_path):
    out = tmp_path / "m8.tflite"
    args = ["export", str(checkpoints[0]), "--format", "litert", "--out", str(out), "--precision", "int8"]
    assert (
        main([*args, "--calibration-frames", "4", "--dataset", str(tiny_dataset), "--min-agreement", "0"])
        == 0
    )
    assert main(["agree", str(checkpoints[0]), str(out), "--dataset", str(tiny_dataset), "--no-progress",
                 "--json", str(tmp_path / "r.json")]) == 0  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["b"]["precision"] == "int8" and report["b"]["runtime"].startswith("litert")
    assert 0 < report["max_delta_logits"] and report["agreement"] > 50
