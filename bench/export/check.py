"""Every export checks itself: one frame through the written file (its own runtime) and through its source
(the Keras model), compared as `bench agree` compares: arg-max agreement over train IDs 0..18 and the
largest |delta logits|.

The runtimes are called directly (ONNX Runtime, OpenVINO with f32 inference precision, the LiteRT
interpreter) on the normalised input the Keras model saw, so the check measures the export alone, not
the preprocessing of a model source.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_TRAIN_IDS = 19
MIN_AGREEMENT = {"fp32": 99.9, "fp16": 99.0, "int8": 90.0}
"""Percent of pixels whose arg-max must agree with the source: fp32 differs by float rounding only."""


@dataclass(frozen=True)
class Check:
    agreement: float  # percent of pixels with the same arg-max over train IDs 0..18
    max_delta: float  # largest |delta logits| over channels 0..18
    mean_delta: float
    pixels: int
    seconds: float  # one forward pass of the exported file

    def line(self) -> str:
        return (
            f"{self.agreement:.3f}% of {self.pixels:,} pixels agree, max |delta logits| {self.max_delta:.3g} "
            f"(mean {self.mean_delta:.3g})"
        )


def compare(source: np.ndarray, exported: np.ndarray, seconds: float = 0.0) -> Check:
    """Agreement and deltas of two (1, H, W, C) logits arrays (channels 0..18 compared)."""
    a = np.asarray(source, np.float32)[..., :NUM_TRAIN_IDS]
    b = np.asarray(exported, np.float32)[..., :NUM_TRAIN_IDS]
    if a.shape != b.shape:
        raise ValueError(f"the export gives logits of shape {b.shape}, its source {a.shape}")
    delta = np.abs(a.astype(np.float64) - b)
    agree = np.argmax(a, axis=-1) == np.argmax(b, axis=-1)
    return Check(
        agreement=100.0 * float(agree.mean()),
        max_delta=float(delta.max()),
        mean_delta=float(delta.mean()),
        pixels=int(agree.size),
        seconds=seconds,
    )


def runner(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A forward pass of the exported file: (1, H, W, 3) normalised float32 -> (1, H, W, C) float32."""
    threads = len(os.sched_getaffinity(0))
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if fmt == "openvino":
        import openvino as ov

        compiled = ov.Core().compile_model(
            str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
        )
        return lambda x: compiled(x)[0]
    from bench.sources.litert_runtime import LiteRTModel

    model = LiteRTModel(path, threads=threads)
    return lambda x: model.invoke(np.asarray(x, model.input_dtype))[None]


def refusals(fmt: str) -> tuple[type[BaseException], ...]:
    """What a runtime raises when it refuses a graph: ONNX Runtime's InvalidGraph, Fail, ... derive from
    Exception alone (not RuntimeError)."""
    errors: tuple[type[BaseException], ...] = (RuntimeError, ValueError)
    if fmt == "onnx":
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        errors += tuple(c for c in vars(state).values() if isinstance(c, type) and issubclass(c, Exception))
    return errors


def check_export(fmt: str, path: Path, source: Callable, image: np.ndarray) -> Check:
    """The export at `path` against `source` (the Keras forward pass) on the normalised `image`."""
    import time

    x = np.ascontiguousarray(np.asarray(image, np.float32))
    expected = np.asarray(source(x))
    run = runner(fmt, path)
    run(x)  # warm-up
    t0 = time.perf_counter()
    got = np.asarray(run(x))
    return compare(expected, got, time.perf_counter() - t0)
