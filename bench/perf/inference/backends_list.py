"""Every way this machine can run one checkpoint: a list of (name, how to open it) entries.

An entry's `open(checkpoint, context)` returns an `OpenedModel` the prediction loop runs, or raises
`RunnerUnavailable` saying why it cannot run here (no bf16 arithmetic, no Keras model to convert, a
runtime not installed). Adding a runtime (ONNX Runtime, OpenVINO, TensorRT through ONNX Runtime) is one
entry. The first entry is the reference the others' faithfulness is measured against.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.perf.timing import RunnerUnavailable


@dataclass
class Context:
    """What an opener may need: the frame size (a LiteRT file has a fixed input) and a scratch folder."""

    size: tuple[int, int]
    graph: str | None = None  # an ONNX (or OpenVINO .xml) export of the same model, for the graph runtimes
    recipe: str | None = None  # its recipe JSON (None: its sidecar or metadata)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-backends-")))


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[str, Context], object]


def _tensorflow(precision: str = "fp32", xla: bool = False):
    def open_(checkpoint: str, context: Context):
        from bench.sources.opener import open_checkpoint

        opened = open_checkpoint(checkpoint, precision=precision, fold_bn=True)
        if opened.keras is None:
            raise RunnerUnavailable(f"{checkpoint} is not a TensorFlow model")
        opened.jit = xla
        return opened

    return open_


def _bf16(checkpoint: str, context: Context):
    import tensorflow as tf

    if not (tf.config.list_physical_devices("GPU") or bf16_cpu()):
        raise RunnerUnavailable(
            "this CPU has no bf16 arithmetic (AVX512-BF16 or AMX): bf16 would be emulated"
        )
    return _tensorflow("bf16")(checkpoint, context)


def bf16_cpu() -> bool:
    """Whether the CPU does bf16 arithmetic (AVX512-BF16 or AMX-BF16 in /proc/cpuinfo's flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _litert_fp32(checkpoint: str, context: Context):
    """The checkpoint converted to a float32 LiteRT file of the frame's size, its input recipe inside (the
    LiteRT source feeds raw 0..255 pixels), run by the LiteRT source as `bench predict` runs a .tflite."""
    import keras
    import tensorflow as tf

    from bench.sources.opener import open_checkpoint
    from data.pipeline import normalize

    if checkpoint.endswith(".tflite"):
        return open_checkpoint(checkpoint)
    opened = open_checkpoint(checkpoint, fold_bn=True)
    if opened.keras is None:
        raise RunnerUnavailable(f"{checkpoint} has no Keras model to convert")
    if opened.input_spec.size is not None:
        raise RunnerUnavailable("an input recipe with its own size: not converted here")
    model, spec, (h, w) = opened.keras, opened.input_spec, context.size
    # a Keras model of fixed input around it (a converted tf.function loses the Keras 3 weights: NaN)
    pixels = keras.Input((h, w, 3), batch_size=1)
    outputs = model(keras.layers.Lambda(lambda x: normalize(x, spec))(pixels), training=False)
    logits = keras.layers.Lambda(lambda x: tf.cast(x, tf.float32))(
        outputs["logits"] if isinstance(outputs, dict) else outputs
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(pixels, logits))
    path = context.folder / f"{Path(checkpoint).stem}-{h}x{w}-fp32.tflite"
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its saved artifact's signature
        path.write_bytes(converter.convert())
    return open_checkpoint(str(path))


def _graph(runtime: str, providers: tuple[str, ...] | None = None):
    """The model's exported graph (`--onnx`, the checkpoint itself when it is one, else the checkpoint
    exported to ONNX here) run by `runtime`."""

    def open_(checkpoint: str, context: Context):
        from bench.sources.opened import SourceOptions
        from bench.sources.opener import open_checkpoint

        graph = context.graph or (checkpoint if checkpoint.endswith((".onnx", ".xml")) else None)
        if graph is None:
            graph = context.graph = _onnx_export(checkpoint, context)
        if runtime == "openvino" and not _installed("openvino"):
            raise RunnerUnavailable("openvino is not installed")
        return open_checkpoint(
            graph, options=SourceOptions(runtime=runtime, providers=providers, recipe=context.recipe)
        )

    return open_


def _onnx_export(checkpoint: str, context: Context) -> str:
    """The checkpoint written as ONNX by `bench export`'s writer (its recipe embedded), once per run of the
    table; a model the exporter cannot write is a row saying why."""
    from bench.export.recipe import recipe
    from bench.export.writers import write
    from bench.sources.opener import open_checkpoint
    from data.errors import UserError

    opened = open_checkpoint(checkpoint)
    if opened.keras is None:
        raise RunnerUnavailable(f"{checkpoint} has no Keras model to export: give --onnx FILE")
    path = context.folder / f"{Path(checkpoint).stem}.onnx"
    try:
        write(opened.keras, "onnx", path, recipe(opened.input_spec))
    except UserError as exc:
        raise RunnerUnavailable(f"no ONNX export ({exc})") from None
    return str(path)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


BACKENDS: list[Backend] = [
    Backend("tensorflow fp32", _tensorflow()),
    Backend("tensorflow bf16", _bf16),
    Backend("tensorflow fp32 + XLA", _tensorflow(xla=True)),
    Backend("litert fp32", _litert_fp32),
    Backend("onnxruntime cpu", _graph("onnxruntime")),
    Backend("openvino cpu", _graph("openvino")),
    Backend("onnxruntime cuda", _graph("onnxruntime", ("cuda", "cpu"))),
    Backend("onnxruntime tensorrt", _graph("onnxruntime", ("tensorrt", "cuda", "cpu"))),
]
