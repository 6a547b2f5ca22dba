"""Grouped convolutions in ONNX and OpenVINO exports (bench/export/grouped.py): Keras runs them through XLA,
the traced graph keeps a `StatefulPartitionedCall` ONNX Runtime refuses; the export clone computes them as
split + convolution + concat (dilated ones with a block-diagonal kernel) and agrees with Keras."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def grouped_model():
    """A stack of every grouped case ESPNetv2-like models hold, plus a dilated and a strided one, inside a
    nested model (the clone must reach it); random weights."""
    import keras

    inner_in = keras.Input((None, None, 8))
    y = keras.layers.Conv2D(12, 3, padding="same", groups=4, name="g3x3")(inner_in)
    y = keras.layers.Conv2D(16, 3, strides=2, padding="same", groups=2, use_bias=False, name="g_strided")(y)
    inner = keras.Model(inner_in, y, name="inner")
    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 1, name="plain")(image)
    x = inner(x)
    x = keras.layers.Conv2D(
        20, 3, padding="same", dilation_rate=2, groups=4, activation="relu", name="g_dil"
    )(x)
    x = keras.layers.Conv2D(20, 1, groups=4, name="g1x1")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    model = keras.Model(image, x)
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers(include_self=False):
        if layer.weights and not isinstance(layer, keras.Model):
            layer.set_weights([rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.fixture
def frame():
    return np.random.default_rng(1).standard_normal((1, 17, 23, 3)).astype("float32")  # odd sizes: SAME pads


def test_the_clone_computes_what_the_model_computes(grouped_model, frame):
    from bench.export.grouped import count_grouped, split_groups

    clone = split_groups(grouped_model)
    names = {type(x).__name__ for x in clone._flatten_layers(include_self=False) if x.name.startswith("g")}
    assert names == {"SplitGroupConv2D"} and count_grouped(grouped_model) == 4
    expected = np.asarray(grouped_model(frame))
    np.testing.assert_allclose(np.asarray(clone(frame)), expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    # the source is untouched and shares its other layers' weights with the clone
    assert type(grouped_model.get_layer("g1x1")).__name__ == "Conv2D"
    assert clone.get_layer("depthwise") is grouped_model.get_layer("depthwise")


def test_a_model_without_groups_is_exported_as_it_is():
    import keras

    from bench.export.grouped import split_groups

    image = keras.Input((None, None, 3))
    model = keras.Model(image, keras.layers.Conv2D(4, 3)(image))
    assert split_groups(model) is model


def test_the_unrewritten_onnx_graph_holds_what_onnx_runtime_refuses(grouped_model, tmp_path):
    """The cause, pinned: without the rewrite tf2onnx leaves StatefulPartitionedCall nodes."""
    import onnx

    from bench.export.writers import graph_model

    out = tmp_path / "plain.onnx"
    graph_model(grouped_model).export(str(out), format="onnx", verbose=False, opset_version=17)
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert "StatefulPartitionedCall" in ops


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("openvino", "xml")])
def test_the_export_runs_and_agrees_with_keras(fmt, suffix, grouped_model, frame, tmp_path):
    from bench.export.check import check_export
    from bench.export.writers import write

    out = tmp_path / f"m.{suffix}"
    write(grouped_model, fmt, out, {"input": {}, "output": {}, "layout": "NHWC"})
    if fmt == "onnx":
        import onnx

        assert "StatefulPartitionedCall" not in {n.op_type for n in onnx.load(str(out)).graph.node}
    check = check_export(fmt, out, grouped_model, frame)
    scale = float(np.abs(np.asarray(grouped_model(frame))).max())  # random weights: logits in the hundreds
    assert check.agreement == 100.0 and check.max_delta < 1e-5 * scale


def test_one_tensor_split_in_4_and_in_8_groups_runs_in_onnx_runtime(tmp_path):
    """ESPNetv2's case: one feature map feeds a 4-group and an 8-group convolution. With the split sizes left
    implicit, ONNX Runtime's subexpression elimination merges the two Split nodes and a convolution gets the
    wrong channels ("Input channels C is not equal to kernel channels * group")."""
    import keras

    from bench.export.check import check_export
    from bench.export.writers import write

    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(32, 1, name="plain")(image)
    a = keras.layers.Conv2D(8, 1, groups=4, name="g4")(x)
    b = keras.layers.Conv2D(8, 3, padding="same", groups=8, name="g8")(x)
    model = keras.Model(image, keras.layers.Concatenate()([a, b]))
    out = tmp_path / "m.onnx"
    write(model, "onnx", out, {"input": {}, "output": {}, "layout": "NHWC"})
    frame = np.random.default_rng(2).standard_normal((1, 16, 24, 3)).astype("float32")
    check = check_export("onnx", out, model, frame)
    assert check.agreement == 100.0 and check.max_delta < 1e-4
