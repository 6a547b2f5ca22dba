"""Writing a Keras model as an ONNX, OpenVINO IR or LiteRT file, through Keras 3's own `Model.export`.

- onnx: `Model.export(format="onnx")` (tf2onnx, pinned; opset 17), the recipe in `metadata_props`; fp32 only
  (ONNX Runtime has no post-training quantiser that keeps this harness's checks honest without calibration
  plumbing of its own: use litert for int8).
- openvino: `Model.export(format="openvino")` (ov.convert_model of the traced function), re-saved with the
  recipe in `rt_info`; fp16 compresses the weights (`ov.save_model(compress_to_fp16=True)`).
- litert: `Model.export(format="litert")` (the TFLite converter); fp16 weights, or int8 post-training
  quantisation calibrated on the representative frames given (float input and output, int8 kernels where
  the converter has them). The recipe goes to the sidecar `FILE.tflite.json`.
Input and output stay dynamic in height and width: the runtime is fed the recipe's size or the frame's.
For onnx and openvino, grouped convolutions are rewritten first (bench/export/grouped.py says why).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.export.recipe import METADATA_KEY, embed_onnx, sidecar
from data.errors import UserError

FORMATS = ("onnx", "openvino", "litert")
PRECISIONS = {"onnx": ("fp32",), "openvino": ("fp32", "fp16"), "litert": ("fp32", "fp16", "int8")}
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "litert": ".tflite"}
OPSET = 17
GRAPH_FORMATS = ("onnx", "openvino")
"""Formats traced from the TensorFlow graph, where Keras' XLA-wrapped grouped convolutions do not convert
(bench/export/grouped.py); the TFLite converter takes them as they are."""


def check_format(fmt: str, precision: str, out: Path) -> None:
    """A UserError, before any work, for a format, precision or file name that cannot be written."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS[fmt]:
        raise UserError(
            f"--precision {precision} is not written for --format {fmt}: choose {'|'.join(PRECISIONS[fmt])}"
            + (" (int8: --format litert with --calibration-frames N)" if precision == "int8" else "")
        )
    if out.suffix != SUFFIXES[fmt]:
        raise UserError(f"--out {out}: a {fmt} file is named *{SUFFIXES[fmt]}, e.g. model{SUFFIXES[fmt]}")


def files_of(fmt: str, out: Path) -> list[Path]:
    """Every file an export to `out` writes (their names in the temporary folder are the same)."""
    if fmt == "openvino":
        return [out, out.with_suffix(".bin")]
    if fmt == "litert":
        return [out, sidecar(out)]
    return [out]


def graph_model(keras_model):
    """The Keras model with its logits as the one output (a dict output's "logits"), in float32."""
    import keras

    output = keras_model.output
    if isinstance(output, dict):
        output = output["logits"]
    elif isinstance(output, list | tuple):
        output = output[0]
    if output is keras_model.output and output.dtype == "float32":
        model = keras_model
    else:
        if output.dtype != "float32":
            output = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(output)
        model = keras.Model(keras_model.inputs, output, name=keras_model.name)
    return called(model)


def called(model):
    """`model` after one call on zeros: Keras' ONNX export refuses a model never called."""
    import numpy as np

    model(np.zeros((1, 32, 64, 3), np.float32), training=False)
    return model


def write(
    keras_model,
    fmt: str,
    path: Path,
    recipe: dict[str, Any],
    *,
    precision: str = "fp32",
    calibration: Callable[[], Iterable[Any]] | None = None,
) -> list[Path]:
    """Export `keras_model` to `path` (and its companions); returns the files written."""
    model = graph_model(keras_model)
    if fmt in GRAPH_FORMATS:
        from bench.export.grouped import split_groups

        model = called(split_groups(model))
    text = json.dumps(recipe)
    try:
        _write(model, fmt, path, recipe, text, precision, calibration)
    except UserError:
        raise
    except Exception as exc:  # the converters' own errors: an op they lack, a shape they cannot trace
        raise UserError(f"Keras' {fmt} export of this model failed ({type(exc).__name__}: {exc})") from exc
    return files_of(fmt, path)


def _write(model, fmt: str, path: Path, recipe, text: str, precision: str, calibration) -> None:
    with _quiet():
        if fmt == "onnx":
            model.export(str(path), format="onnx", verbose=False, opset_version=OPSET)
            embed_onnx(path, text)
        elif fmt == "openvino":
            _write_openvino(model, path, text, precision)
        else:
            _write_litert(model, path, precision, calibration)
            sidecar(path).write_text(json.dumps(recipe, indent=2) + "\n")


def _write_openvino(model, path: Path, text: str, precision: str) -> None:
    import openvino as ov

    raw = path.with_name("raw-" + path.name)
    model.export(str(raw), format="openvino", verbose=False)
    traced = ov.Core().read_model(str(raw))
    # the traced function also returns the scalar shape computations it captured: keep the logits alone
    logits = [r for r in traced.get_results() if r.get_output_partial_shape(0).rank.get_length() == 4]
    graph = ov.Model(logits[:1], traced.get_parameters(), traced.get_friendly_name())
    graph.set_rt_info(text, METADATA_KEY)
    ov.save_model(graph, str(path), compress_to_fp16=precision == "fp16")
    for leftover in (raw, raw.with_suffix(".bin")):
        leftover.unlink(missing_ok=True)


def _write_litert(model, path: Path, precision: str, calibration) -> None:
    import tensorflow as tf

    options: dict[str, Any] = {}
    if precision == "fp16":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    elif precision == "int8":
        if calibration is None:
            raise UserError("--precision int8 needs calibration frames: --calibration-frames N --dataset D")

        def representative():
            for image in calibration():
                yield [tf.cast(image, tf.float32)]

        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": representative}
    model.export(str(path), format="litert", verbose=False, **options)


@contextlib.contextmanager
def _quiet():
    """tf2onnx and the converters print pages of progress: keep it off the user's terminal unless it fails."""
    buffer = io.StringIO()
    previous = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
            warnings.simplefilter("ignore")
            yield
    finally:
        if previous is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = previous
