"""ONNX files (ONNX Runtime, OpenVINO) and OpenVINO IR as model sources, on tiny graphs built here
(tests/tiny_onnx.py): layouts, fixed and dynamic shapes, outputs at 1/4, arg-max outputs, label spaces,
the recipe lookup, and the files refused before any runtime loads them. The reference is onnxruntime itself
running the graph (or its dynamic twin) on the whole frame.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bench.sources.opener import SourceOptions, open_checkpoint
from data.errors import UserError
from tests.tiny_onnx import ort_output, per_pixel

PLAIN = {"input": {"mean": [0, 0, 0], "std": [1, 1, 1]}}  # the network sees the pixels as they are
TRAIN_IDS = {**PLAIN, "output": {"kind": "train_ids"}}
SHIFTED = list(range(1, 20))  # channel 0 "unlabeled", train IDs in channels 1..19


def recipe(**output) -> dict:
    return {**PLAIN, "output": output}


def frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (1, height, width, 3)).astype(np.float32)


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NCHW" else x)


def reference(path, x: np.ndarray, layout: str) -> np.ndarray:
    """onnxruntime's output for the (1, H, W, 3) frame x, as (H, W, C) logits or an (H, W) map."""
    out = ort_output(path, to_layout(x, layout))[0]
    return out.transpose(1, 2, 0) if out.ndim == 3 and layout == "NCHW" else out


def run(path, x, runtime="onnxruntime", **kwargs) -> np.ndarray:
    opened = open_checkpoint(path, options=SourceOptions(runtime=runtime))
    return np.asarray(opened.forward(x, **kwargs))[0]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_dynamic_graph_logits_are_what_onnxruntime_computes_in_train_id_order(tmp_path, layout, runtime):
    path = per_pixel(tmp_path / "m.onnx", layout=layout, recipe=PLAIN)
    x = frame(40, 56)
    ours = run(path, x, runtime)
    assert ours.shape == (40, 56, 19) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference(path, x, layout), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(("height", "width", "stride"), [(40, 56, None), (10, 12, None), (40, 56, (5, 7))])
def test_fixed_graph_slides_windows_that_give_the_whole_frame(
    tmp_path, layout, runtime, height, width, stride
):
    fixed = per_pixel(tmp_path / "fixed.onnx", layout=layout, size=(16, 24), recipe=PLAIN)
    twin = per_pixel(tmp_path / "twin.onnx", layout=layout, recipe=PLAIN)  # same weights, any size
    opened = open_checkpoint(fixed, options=SourceOptions(runtime=runtime))
    assert opened.strided and opened.metadata["input_size"] == "16x24"
    assert opened.metadata["stride"] == "11x16" and opened.metadata["layout"] == layout
    x = frame(height, width)
    ours = np.asarray(opened.forward(x) if stride is None else opened.forward(x, stride=stride))[0]
    np.testing.assert_allclose(ours, reference(twin, x, layout), rtol=1e-5, atol=1e-5)


def test_fixed_graph_slides_its_arg_max_too(tmp_path):
    fixed = per_pixel(tmp_path / "fixed.onnx", size=(16, 24), argmax=True, recipe=TRAIN_IDS)
    twin = per_pixel(tmp_path / "twin.onnx", argmax=True, recipe=TRAIN_IDS)
    x = frame(40, 56)
    np.testing.assert_array_equal(run(fixed, x), reference(twin, x, "NCHW"))


def test_a_quarter_resolution_output_comes_back_by_the_recipe_output_resize(tmp_path):
    import tensorflow as tf

    x = frame(32, 48)
    nearest = per_pixel(
        tmp_path / "n.onnx", downsample=4, recipe={"input": {**PLAIN["input"], "output_resize": "nearest"}}
    )
    coarse = reference(nearest, x, "NCHW")
    assert coarse.shape == (8, 12, 19)
    np.testing.assert_allclose(run(nearest, x), coarse.repeat(4, 0).repeat(4, 1), rtol=1e-6)
    bilinear = per_pixel(
        tmp_path / "b.onnx", downsample=4, recipe=PLAIN
    )  # output_resize defaults to bilinear
    expected = tf.image.resize(coarse[None], (32, 48), method="bilinear")[0].numpy()  # half-pixel centres
    np.testing.assert_allclose(run(bilinear, x), expected, rtol=1e-5, atol=1e-5)
    labels = per_pixel(tmp_path / "l.onnx", downsample=4, argmax=True, recipe=TRAIN_IDS)
    np.testing.assert_array_equal(run(labels, x), reference(labels, x, "NCHW").repeat(4, 0).repeat(4, 1))


def test_a_20th_background_channel_is_left_out_of_the_arg_max(tmp_path):
    path = per_pixel(tmp_path / "m.onnx", channels=20, boost={19: 2.0}, recipe=PLAIN)
    x = frame(24, 32)
    full = reference(path, x, "NCHW")
    assert 0.05 < np.mean(full.argmax(-1) == 19) < 0.9  # the background wins somewhere: not a train ID
    np.testing.assert_allclose(run(path, x), full[..., :19], rtol=1e-6)


def test_channels_1_to_19_hold_the_train_ids_of_a_model_whose_channel_0_is_unlabeled(tmp_path):
    x = frame(24, 32)
    logits = per_pixel(tmp_path / "m.onnx", channels=20, recipe=recipe(channels=SHIFTED))
    np.testing.assert_allclose(run(logits, x), reference(logits, x, "NCHW")[..., 1:], rtol=1e-6)
    labels = per_pixel(
        tmp_path / "a.onnx",
        channels=20,
        argmax=True,
        boost={0: 2.0},
        recipe=recipe(kind="train_ids", channels=SHIFTED),
    )
    theirs = reference(labels, x, "NCHW")
    assert (theirs == 0).any()
    np.testing.assert_array_equal(run(labels, x), np.where(theirs == 0, 255, theirs - 1))


def test_arg_max_values_past_the_train_ids_become_void(tmp_path):
    boost = {19: 1.5, 20: 1.5}
    path = per_pixel(tmp_path / "m.onnx", channels=21, argmax=True, boost=boost, recipe=TRAIN_IDS)
    x = frame(24, 32)
    theirs = reference(path, x, "NCHW")
    assert (theirs >= 19).any()
    np.testing.assert_array_equal(run(path, x), np.where(theirs >= 19, 255, theirs))


def test_layout_the_graph_cannot_say_must_come_from_the_recipe(tmp_path):
    ambiguous = per_pixel(tmp_path / "a.onnx", size=(8, 3), recipe=PLAIN)  # (1, 3, 8, 3): axis 1 and 3
    with pytest.raises(UserError, match=r"does not say its layout.*\"layout\""):
        open_checkpoint(ambiguous)
    given = per_pixel(tmp_path / "g.onnx", size=(8, 3), recipe={**PLAIN, "layout": "NCHW"})
    assert open_checkpoint(given).metadata["layout"] == "NCHW"
    wrong = per_pixel(tmp_path / "w.onnx", size=(8, 16), recipe={**PLAIN, "layout": "NHWC"})
    with pytest.raises(UserError, match="recipe says layout NHWC"):
        open_checkpoint(wrong)


def test_the_recipe_is_looked_up_option_then_sidecar_then_metadata(tmp_path):
    embedded = recipe(channels=SHIFTED)
    path = per_pixel(tmp_path / "m.onnx", channels=20, embedded=embedded)
    x = frame(8, 8)
    full = reference(path, x, "NCHW")
    opened = open_checkpoint(path)
    assert opened.metadata["graph_recipe"] == f"{path} metadata"
    np.testing.assert_allclose(np.asarray(opened.forward(x))[0], full[..., 1:], rtol=1e-6)
    (tmp_path / "m.onnx.json").write_text(json.dumps(PLAIN))
    opened = open_checkpoint(path)
    assert opened.metadata["graph_recipe"] == str(tmp_path / "m.onnx.json")
    np.testing.assert_allclose(np.asarray(opened.forward(x))[0], full[..., :19], rtol=1e-6)
    option = tmp_path / "other.json"
    option.write_text(json.dumps({"input": {"mean": [1, 1, 1], "std": [2, 2, 2]}}))
    opened = open_checkpoint(path, options=SourceOptions(recipe=str(option)))
    assert opened.metadata["graph_recipe"] == f"--recipe {option}" and opened.input_spec.mean == (
        1.0,
        1.0,
        1.0,
    )


def test_no_recipe_or_a_bad_one_is_a_clear_error(tmp_path):
    path = per_pixel(tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"m\.onnx\.json.*input\.mean, input\.std.*output\.kind"):
        open_checkpoint(path)
    sidecar = tmp_path / "m.onnx.json"
    for bad, message in [
        ({"input": {"mean": [0, 0, 0]}}, "at least 'mean' and 'std'"),
        ({**PLAIN, "outputs": {}}, "unknown field.*outputs"),
        ({"input": {**PLAIN["input"], "normalise": 1}}, r"unknown field.*input\.normalise"),
        (recipe(kind="probabilities"), "output.kind"),
        (recipe(channels=list(range(18))), "output.channels must list 19"),
        ({**PLAIN, "layout": "CHW"}, "layout 'CHW'"),
        ({"input": {**PLAIN["input"], "channel_order": "GBR"}}, "channel order"),
        (recipe(kind="train_ids"), "holds scores, but the recipe says train_ids"),
        (recipe(channels=list(range(2, 21))), "has 19 channels.*reads channel 20"),
    ]:
        sidecar.write_text(json.dumps(bad))
        with pytest.raises(UserError, match=message):
            open_checkpoint(path)
    sidecar.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        open_checkpoint(path)
    labels = per_pixel(tmp_path / "a.onnx", argmax=True, recipe=PLAIN)
    with pytest.raises(UserError, match="integer map, but the recipe says logits"):
        open_checkpoint(labels)
    fixed = per_pixel(
        tmp_path / "f.onnx", size=(16, 24), recipe={"input": {**PLAIN["input"], "size": [32, 48]}}
    )
    with pytest.raises(UserError, match="not the graph's fixed 16x24"):
        open_checkpoint(fixed)


@pytest.fixture
def no_runtime(monkeypatch):
    """Any runtime loading the file fails the test: the checks must refuse it first."""
    from bench.sources import graph_runtimes

    def refuse(*args, **kwargs):
        raise AssertionError("a runtime was asked to load a file the checks should have refused")

    monkeypatch.setattr(graph_runtimes, "make_runner", refuse)


def _external(tmp_path, location: str):
    import onnx

    path = per_pixel(tmp_path / "m.onnx", recipe=PLAIN)
    model = onnx.load(str(path))
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    for key, value in {"location": location, "offset": "0", "length": "96"}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_external_data_leaving_the_folder_is_refused_before_loading(tmp_path, no_runtime):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 96)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for location in ("../secret.bin", str(tmp_path / "secret.bin")):
        path = _external(model_dir, location)
        with pytest.raises(UserError, match="outside the model's folder"):
            open_checkpoint(path)
    (model_dir / "link.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(UserError, match="outside the model's folder"):
        open_checkpoint(_external(model_dir, "link.bin"))
    path = _external(model_dir, "weights.bin")
    with pytest.raises(UserError, match="weights.bin: absent"):
        open_checkpoint(path)
    (model_dir / "weights.bin").write_bytes(b"\0" * 40)
    with pytest.raises(UserError, match="declares 96 bytes at offset 0.*holds 40"):
        open_checkpoint(path)


def test_external_data_inside_the_folder_is_read(tmp_path):
    import onnx

    path = per_pixel(tmp_path / "m.onnx", recipe=PLAIN)
    x = frame(8, 8)
    expected = reference(path, x, "NCHW")
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, location="m.data", size_threshold=0)
    assert (tmp_path / "m.data").is_file()
    np.testing.assert_allclose(run(path, x), expected, rtol=1e-6)


def test_custom_op_domains_are_refused_before_loading(tmp_path, no_runtime):
    import onnx
    from onnx import helper

    path = per_pixel(tmp_path / "m.onnx", recipe=PLAIN)
    model = onnx.load(str(path))
    model.graph.node[-1].domain = "com.example.fancy"
    model.graph.node[-1].op_type = "FancyIdentity"
    model.opset_import.append(helper.make_opsetid("com.example.fancy", 1))
    onnx.save(model, str(path))
    with pytest.raises(UserError, match="custom-op domain.*com.example.fancy"):
        open_checkpoint(path)


def test_truncated_files_and_short_initializers_are_refused_before_loading(tmp_path, no_runtime):
    import onnx

    path = per_pixel(tmp_path / "m.onnx", recipe=PLAIN)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match=r"m\.onnx"):
            open_checkpoint(path)
    path.write_bytes(data)
    model = onnx.load(str(path))
    weights = model.graph.initializer[2]  # w2, (19, 8, 1, 1) float32
    weights.raw_data = weights.raw_data[:100]
    onnx.save(model, str(path))
    with pytest.raises(UserError, match="initializer 'w2'.*declares 608 bytes but holds 100"):
        open_checkpoint(path)


def test_openvino_ir_is_a_source_of_its_own(tmp_path):
    import openvino as ov

    onnx_path = per_pixel(tmp_path / "m.onnx", layout="NHWC", size=(16, 24))
    xml = tmp_path / "ir" / "m.xml"
    xml.parent.mkdir()
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    with pytest.raises(UserError, match=r"m\.xml\.json"):
        open_checkpoint(xml)
    (tmp_path / "ir" / "m.xml.json").write_text(json.dumps(PLAIN))
    x = frame(40, 56)
    twin = per_pixel(tmp_path / "twin.onnx", layout="NHWC")
    opened = open_checkpoint(xml)
    assert opened.metadata["runtime"] == "openvino" and opened.strided
    np.testing.assert_allclose(np.asarray(opened.forward(x))[0], reference(twin, x, "NHWC"), atol=1e-5)
    with pytest.raises(UserError, match="runs on --runtime openvino only"):
        open_checkpoint(xml, options=SourceOptions(runtime="onnxruntime"))
    model = ov.Core().read_model(str(xml))
    model.set_rt_info(json.dumps(recipe(channels=list(range(18, -1, -1)))), "cityscapes_bench")
    embedded = tmp_path / "embedded.xml"
    ov.save_model(model, str(embedded), compress_to_fp16=False)
    opened = open_checkpoint(embedded)  # no sidecar: the recipe in its rt_info
    assert opened.metadata["graph_recipe"] == f"{embedded} metadata"  # train IDs in reverse channel order
    np.testing.assert_allclose(
        np.asarray(opened.forward(x))[0], reference(twin, x, "NHWC")[..., ::-1], atol=1e-5
    )
    weights = xml.with_suffix(".bin")
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(UserError, match="truncated"):
        open_checkpoint(xml)


def test_graph_options_are_refused_for_other_sources_and_unknown_providers(tmp_path):
    with pytest.raises(UserError, match="--runtime --recipe apply to an exported graph"):
        open_checkpoint(tmp_path / "model.keras", options=SourceOptions(runtime="openvino", recipe="r.json"))
    path = per_pixel(tmp_path / "m.onnx", recipe=PLAIN)
    with pytest.raises(UserError, match="CUDAExecutionProvider is not in this onnxruntime"):
        open_checkpoint(path, options=SourceOptions(providers=("cuda",)))
    with pytest.raises(UserError, match="--precision bf16 does not apply"):
        open_checkpoint(path, precision="bf16")


def test_the_forward_pass_needs_no_tensorflow(tmp_path):
    path = per_pixel(tmp_path / "m.onnx", size=(16, 24), recipe=PLAIN)
    code = (
        "import sys, numpy as np\n"
        "from bench.sources.opener import open_checkpoint, SourceOptions\n"
        "for runtime in ('onnxruntime', 'openvino'):\n"
        f"    m = open_checkpoint({str(path)!r}, options=SourceOptions(runtime=runtime))\n"
        "    assert np.asarray(m.forward(np.zeros((1, 40, 56, 3), np.float32))).shape == (1, 40, 56, 19)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_bench_predict_runs_an_onnx_file_and_names_its_runtime(tmp_path, tiny_dataset):
    from PIL import Image

    from bench.cli import main

    path = per_pixel(
        tmp_path / "m.onnx", layout="NHWC", recipe={"input": {"mean": [128] * 3, "std": [64] * 3}}
    )
    outs = {}
    for runtime in ("onnxruntime", "openvino"):
        out = tmp_path / runtime
        args = ["predict", "--checkpoint", str(path), "--dataset", str(tiny_dataset), "--out", str(out)]
        assert main([*args, "--runtime", runtime, "--limit", "2", "--no-progress"]) == 0
        stats = json.loads((out / "predict_stats.json").read_text())
        assert stats["runtime"].split()[0] == runtime and stats["input"]["mean"] == [128.0] * 3
        outs[runtime] = [np.asarray(Image.open(p)) for p in sorted(out.glob("*_leftImg8bit.png"))]
    assert len(outs["onnxruntime"]) == 2
    for a, b in zip(outs["onnxruntime"], outs["openvino"], strict=True):
        assert np.mean(a == b) >= 0.999
    assert (
        "CPUExecutionProvider"
        in json.loads((tmp_path / "onnxruntime/predict_stats.json").read_text())["runtime"]
    )
    args = [
        "predict",
        "--checkpoint",
        str(path),
        "--dataset",
        str(tiny_dataset),
        "--out",
        str(tmp_path / "x"),
    ]
    assert main([*args, "--providers", "tensorrt", "--no-progress"]) == 2


def test_submit_robustness_and_perf_model_take_an_onnx_file(tmp_path, tiny_dataset, capsys):
    import zipfile

    from bench.cli import main

    path = per_pixel(
        tmp_path / "m.onnx", size=(32, 48), recipe={"input": {"mean": [128] * 3, "std": [64] * 3}}
    )
    argv = ["--checkpoint", str(path), "--dataset", str(tiny_dataset), "--split", "val", "--no-progress"]
    zipped = tmp_path / "submission.zip"
    assert main(["submit", *argv, "--out", str(zipped), "--runtime", "openvino"]) == 0
    with zipfile.ZipFile(zipped) as archive:
        assert len(archive.namelist()) == 3
    sweep = [
        "--corruptions",
        "gaussian_noise",
        "--severities",
        "1",
        "--limit",
        "1",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(["robustness", *argv, *sweep, "--csv", str(tmp_path / "r.csv"), "--threads", "1"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["runtime"].startswith("onnxruntime ") and summary["checkpoint_sha256"]
    capsys.readouterr()
    perf = ["perf", "model", "--checkpoint", str(path), "--size", "64x128", "--repeats", "1"]
    assert main([*perf, "--runtime", "openvino"]) == 0
    out = capsys.readouterr().out
    assert (
        "m (openvino 20" in out and " CPU, 32x48 windows) on a 64x128 frame" in out and "CPU s median" in out
    )
    assert main(["perf", "model", "--checkpoint", str(tmp_path / "x.keras"), "--runtime", "openvino"]) == 2
    assert "--runtime apply to an exported graph" in capsys.readouterr().err


def test_bench_run_scores_an_onnx_file_and_the_row_names_runtime_and_provider(tmp_path, tiny_dataset):
    from bench.run import run_benchmark

    path = per_pixel(tmp_path / "m.onnx", recipe={"input": {"mean": [128] * 3, "std": [64] * 3}})
    folder = tmp_path / "run"
    report = run_benchmark(
        None,
        dataset=str(tiny_dataset),
        checkpoint=str(path),
        readme=None,
        results_csv=folder / "results.csv",
        runs_dir=folder / "runs",
        checkpoint_root=tmp_path / "checkpoints",
        progress=False,
        graph_options=SourceOptions(runtime="openvino", threads=1),
    )
    row = report.row
    assert row["model"] == "m" and row["runtime"].startswith("openvino ") and row["runtime"].endswith(" CPU")
    assert row["threads"] == 1 and row["n_images"] == 3 and 0 <= row["miou"] <= 100
    assert row["recipe"] == ""  # the training recipe's column: an exported graph names none
