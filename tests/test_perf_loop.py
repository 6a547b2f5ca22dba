"""`bench perf loop` and `bench perf backends` on a tiny checkpoint: every contender measured, each stage's
share, every backend's row with its agreement against TensorFlow fp32, and results/backends.csv rows."""

from __future__ import annotations

import csv
import math

import pytest

pytest.importorskip("tensorflow")
from bench.cli import main  # noqa: E402
from bench.perf.inference.backends import measure_backends, write_rows  # noqa: E402
from data.cityscapes import list_samples  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import keras

    from bench.sources import keras_checkpoint
    from models import registry

    keras.utils.set_random_seed(0)
    model = registry.build("tests.tiny_model:tiny", aux_head=False)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.keras"
    return str(keras_checkpoint.save(model, path, {"model": "tests.tiny_model:tiny", "aux_head": False}))


def test_perf_loop_measures_each_sink_set_beside_the_forward_pass(checkpoint, capsys):
    argv = ["perf", "loop", "--checkpoint", checkpoint, "--size", "32x64", "--limit", "2", "--repeats", "1"]
    assert main([*argv, "--sinks", "none,evaluation,boundary"]) == 0
    out = capsys.readouterr().out
    for row in (
        "forward pass (bare)",
        "loop, sinks: none",
        "loop, sinks: evaluation",
        "loop, sinks: boundary",
    ):
        assert row in out
    assert "plain loop, sinks: evaluation" in out and ">= 0.90" in out and ">= 0.80" in out
    shares = [float(line.split()[-1].rstrip("%")) for line in out.splitlines() if line.endswith("%")]
    assert len(shares) == 9 and abs(sum(shares) - 100) <= 5  # each stage, rounded to whole percent


def test_perf_loop_refuses_bad_counts(checkpoint, capsys):
    assert main(["perf", "loop", "--checkpoint", checkpoint, "--limit", "0"]) == 2
    assert "--limit 0" in capsys.readouterr().err


def test_backends_rows_agree_with_tensorflow_fp32_and_replace_their_earlier_rows(
    checkpoint, tiny_dataset, tmp_path
):
    samples = list_samples(tiny_dataset, "val", require_images=True)[:2]
    rows = measure_backends(checkpoint, samples, (64, 128), repeats=1, scored=True)
    by_name = {r["backend"]: r for r in rows}
    assert list(by_name)[:4] == ["tensorflow fp32", "tensorflow bf16", "tensorflow fp32 + XLA", "litert fp32"]
    for name in ("onnxruntime cpu", "openvino cpu"):  # no --onnx: run on an ONNX export made for the table
        graph_row = by_name[name]
        assert graph_row["note"] == "on an ONNX export made for this table" and graph_row["graph"] == ""
        assert graph_row["argmax_agreement"] >= 0.999, graph_row
    reference = by_name["tensorflow fp32"]
    assert (
        reference["argmax_agreement"] == 1.0
        and reference["miou_delta"] == 0
        and reference["note"] == "reference"
    )
    assert 0 < reference["miou"] <= 1 and reference["images_per_s"] > 0 and reference["cpu_s_per_frame"] > 0
    for name in ("tensorflow fp32 + XLA", "litert fp32"):  # the same float32 maths, other kernels
        assert by_name[name]["argmax_agreement"] >= 0.999, by_name[name]
        assert abs(by_name[name]["miou_delta"]) < 0.01
    bf16 = by_name["tensorflow bf16"]
    assert "images_per_s" not in bf16 and "bf16" in bf16["note"] or bf16["argmax_agreement"] > 0.5

    out = tmp_path / "backends.csv"
    other = [{**reference, "checkpoint": "other.keras"}]
    write_rows(other, out)
    write_rows(rows, out)
    write_rows(rows, out)  # the same checkpoint again: replaced, not added
    with out.open() as f:
        written = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in written].count(checkpoint) == len(rows) == 8
    assert [r["checkpoint"] for r in written].count("other.keras") == 1
    ran = [r for r in written if r["checkpoint"] == checkpoint and r["images_per_s"]]
    assert ran and all(not math.isnan(float(r["argmax_agreement"])) for r in ran)


def test_graph_runtimes_take_their_rows_from_an_onnx_file(tiny_dataset, tmp_path):
    pytest.importorskip("onnxruntime")
    from tests.tiny_onnx import per_pixel

    graph = per_pixel(tmp_path / "m.onnx", recipe={"input": {"mean": [0, 0, 0], "std": [1, 1, 1]}})
    samples = list_samples(tiny_dataset, "val", require_images=True)[:1]
    rows = {
        r["backend"]: r for r in measure_backends(str(graph), samples, (64, 128), repeats=1, scored=False)
    }
    assert "not a TensorFlow model" in rows["tensorflow fp32"]["note"]
    reference = rows["onnxruntime cpu"]
    assert reference["note"] == "reference" and reference["argmax_agreement"] == 1.0
    if "images_per_s" in rows["openvino cpu"]:
        assert rows["openvino cpu"]["argmax_agreement"] >= 0.999
    assert "images_per_s" not in rows["onnxruntime tensorrt"]  # not in the CPU build: its row says why
    assert "TensorrtExecutionProvider" in rows["onnxruntime tensorrt"]["note"]


def _rows(checkpoint, device, *figures):
    return [
        {
            "checkpoint": checkpoint,
            "backend": name,
            "input_size": "64x128",
            "images_per_s": rate,
            "argmax_agreement": agree,
        }
        | {"device": device}
        for name, rate, agree in figures
    ]


def test_runtime_auto_takes_the_fastest_faithful_backend_and_says_so(checkpoint, tiny_dataset, tmp_path):
    from bench.common.device import device_label
    from bench.inference.fastest import open_fastest, open_model
    from bench.inference.loop import predict_frames
    from bench.sources.opened import SourceOptions
    from data.errors import UserError

    out = tmp_path / "backends.csv"
    here = device_label()
    rows = _rows(
        checkpoint,
        here,
        ("tensorflow fp32", 10.0, 1.0),
        ("tensorflow fp32 + XLA", 20.0, 0.9995),
        ("tensorflow bf16", 30.0, 0.98),  # fastest, but changes 2% of the pixels
        ("litert fp32", 40.0, 1.0),  # its file was temporary: not one to open again
    )
    rows += _rows(checkpoint, "GPU: 1x elsewhere", ("tensorflow bf16", 99.0, 1.0))  # another machine's
    write_rows(rows, out)
    opened = open_fastest(checkpoint, csv_path=out)
    assert opened.jit is True and opened.metadata["runtime"] == "tensorflow+xla"
    assert "tensorflow fp32 + XLA, 20.00 images/s" in opened.metadata["runtime_choice"]
    samples = list_samples(tiny_dataset, "val", require_images=True)[:1]
    assert "XLA" in predict_frames(opened, samples, progress=False).stats["runtime_choice"]

    write_rows(_rows(checkpoint, here, ("tensorflow fp32", 10.0, 0.5)), out)
    with pytest.raises(UserError, match="none with agreement >= 99.9%"):
        open_fastest(checkpoint, csv_path=out)
    with pytest.raises(UserError, match="does not exist: run `python -m bench perf backends"):
        open_fastest(checkpoint, csv_path=tmp_path / "none.csv")
    with pytest.raises(UserError, match="drop --precision bf16"):
        open_model(checkpoint, precision="bf16", fold_bn=True, options=SourceOptions(runtime="auto"))
