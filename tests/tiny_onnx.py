"""Tiny ONNX graphs built here with `onnx.helper`, for the ONNX / OpenVINO source tests.

Each is per-pixel (two 1x1 convolutions), optionally followed by an average pool (an output at 1/k of the
input) or an arg-max over the channels, in NCHW or NHWC, of a fixed or a dynamic input size. Per-pixel, a
correct tiling of any frame gives exactly what the same graph computes on the whole frame: the dynamic twin
with the same `seed` run by onnxruntime itself is the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 9  # what ONNX Runtime 1.32 and OpenVINO 2026.4 both read


def per_pixel(
    path: Path,
    *,
    layout: str = "NCHW",
    size: tuple[int, int] | None = None,
    channels: int = 19,
    downsample: int = 1,
    argmax: bool = False,
    seed: int = 0,
    recipe: dict | None = None,
    embedded: dict | None = None,
    boost: dict[int, float] | None = None,
) -> Path:
    """Write the graph to `path` (and `recipe` as its sidecar, `embedded` into its metadata_props);
    `boost` adds to the bias of some channels (so that e.g. a background channel wins somewhere)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    h, w = size if size is not None else ("H", "W")
    batch = 1 if size is not None else "N"
    shape = [batch, 3, h, w] if layout == "NCHW" else [batch, h, w, 3]
    bias = rng.normal(0, 0.1, channels).astype(np.float32)
    for channel, extra in (boost or {}).items():
        bias[channel] += extra
    inits = [
        numpy_helper.from_array(rng.normal(0, 1, (8, 3, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 1, (channels, 8, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(bias, "b2"),
    ]
    nodes, x = [], "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [x], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    nodes += [
        helper.make_node("Conv", [x, "w1", "b1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["relu"]),
        helper.make_node("Conv", ["relu", "w2", "b2"], ["scores"]),
    ]
    x = "scores"
    if downsample > 1:
        k = [downsample, downsample]
        nodes.append(helper.make_node("AveragePool", [x], ["pooled"], kernel_shape=k, strides=k))
        x = "pooled"
    if argmax:
        nodes.append(helper.make_node("ArgMax", [x], ["labels"], axis=1, keepdims=0))
        output = helper.make_tensor_value_info("labels", TensorProto.INT64, None)
    else:
        if layout == "NHWC":
            nodes.append(helper.make_node("Transpose", [x], ["logits"], perm=[0, 2, 3, 1]))
        else:
            nodes.append(helper.make_node("Identity", [x], ["logits"]))
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)], [output], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model = onnx.shape_inference.infer_shapes(model)
    if embedded is not None:
        helper.set_model_props(model, {"cityscapes_bench": json.dumps(embedded)})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    if recipe is not None:
        Path(f"{path}.json").write_text(json.dumps(recipe))
    return path


def ort_output(path: Path, x: np.ndarray) -> np.ndarray:
    """What onnxruntime itself computes for the input tensor `x` (in the graph's layout)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]
