"""The prediction loop: a model, frames, settings and sinks -> every frame predicted and handed to each sink.

`bench predict`, `bench run`, `bench submit` and validation during training all run this one loop; what a
frame becomes (PNGs, logits files, scores, a zip entry) is the sinks' business (bench/inference/sinks.py).

Figures of the run (`Predicted.stats`): images/s over the run (decoding, inference and the sinks, after a
warm-up batch that pays for tracing), per-frame latency p50/p95 (inference and arg-max; on a GPU the
traced step may return before the device finishes), peak resident
memory of the process (and GPU memory when there is one), where it ran (device, threads, TensorFlow,
precision, batch, frame size), the model's metadata and the mode settings.
"""

from __future__ import annotations

import functools
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common.progress import progress_bar
from bench.common.tensorflow_import import import_tensorflow
from bench.inference.device_step import device_step, on_device
from bench.inference.feeder import SinkFeeder
from bench.inference.sinks import Sink
from bench.sources.opener import OpenedModel, as_opened
from data.errors import UserError
from models.inference_modes import DEFAULT_SETTINGS, InferenceSettings, frame_logits, slides


@dataclass(frozen=True)
class Predicted:
    """What `predict_frames` returns: the run's figures and each sink's `evaluate()`, in sink order."""

    stats: dict[str, Any]
    results: tuple[Any, ...]


PREFETCH = 2
"""Batches decoded and normalised ahead of the one the model runs (a bounded tf.data prefetch)."""

SINK_DEPTH = 2
"""Predicted batches waiting for the sinks' thread (bench/inference/feeder.py) before the model waits."""


def predict_frames(
    model: OpenedModel | Any,
    samples: Sequence,
    settings: InferenceSettings = DEFAULT_SETTINGS,
    sinks: Sequence[Sink] = (),
    *,
    progress: bool = True,
    pipelined: bool = True,
) -> Predicted:
    """Predict every frame of `samples` (`data.cityscapes.Sample`s with an image) with `model` (an
    `OpenedModel` of `open_checkpoint`, a Keras model or a forward callable) under `settings`, hand each
    frame to every sink in order, and return the figures and the sinks' results.

    `pipelined` (the default) hides the loop's own work behind the forward pass: the next frames are
    decoded and normalised while one runs (`PREFETCH` batches ahead), the arg-max runs inside the traced
    forward pass where the logits are (`device_step`; logits leave it only when a sink has `needs_logits`,
    which a sink without that attribute is taken to have), and the sinks run in a thread of their own in
    frame order (`SinkFeeder`). `settings.batch` frames of one size go through the network at once (the last
    batch of a size is padded with its last frame). `pipelined=False` is the plain frame-by-frame loop
    (numpy arg-max, sinks in the caller's thread): the yardstick the tests hold the fast loop to.

    `settings.precision` and `fold_bn` are how the model was opened (`open_checkpoint`); the loop records
    them, it does not apply them."""
    tf = import_tensorflow()

    from bench.common.device import environment
    from data.pipeline import eval_dataset, frame_size

    opened = as_opened(model)
    options = settings.mode_options()
    metadata = opened.metadata
    spec = opened.input_spec
    device = pipelined and on_device(opened, settings)
    if settings.batch > 1 and not device:
        raise UserError(
            f"--batch {settings.batch} needs a TensorFlow model run whole at the frame's own size "
            f"({metadata.get('checkpoint') or 'this model'} is not one): use --batch 1"
        )
    with_logits = any(getattr(sink, "needs_logits", True) for sink in sinks)
    if device:
        step = device_step(opened, with_logits=with_logits)
    else:
        one = frame_predictor(opened, settings)

        def step(images):
            train_ids, logits = one(images)
            return train_ids[None], None if logits is None else logits[None]

    for sink in sinks:
        sink.reset()

    latencies: list[float] = []
    sizes: set[tuple[int, int]] = set()

    def frame(sample, train_ids, logits) -> None:
        if spec.size is not None:  # the network saw the recipe's input size: back to the frame's
            train_ids, logits = back_to_frame(train_ids, logits, frame_size(sample.image), spec)
        sizes.add(train_ids.shape)
        for sink in sinks:
            sink.process(sample, train_ids, logits)

    def inline(group, train_ids, logits) -> None:
        train_ids, logits = np.asarray(train_ids), None if logits is None else np.asarray(logits)
        for i, sample in enumerate(group):
            frame(sample, train_ids[i], None if logits is None else logits[i])

    ahead = PREFETCH * settings.batch if pipelined else None
    frames = eval_dataset(samples, with_labels=False, input_spec=spec, prefetch=ahead)
    feeder = SinkFeeder(frame, depth=SINK_DEPTH) if pipelined else None
    hand = feeder.put if feeder is not None else inline
    began = None
    bar = progress_bar(len(samples), desc="predict", unit="img", enabled=progress)
    try:
        for group, images in _batches(samples, frames, settings.batch, tf):
            if began is None:  # warm-up: trace and compile on the first batch, outside the timings
                step(images)
                began = time.perf_counter()
            t0 = time.perf_counter()
            train_ids, logits = step(images)
            latencies.append((time.perf_counter() - t0) / len(group))
            hand(group, train_ids, logits)
            bar.update(len(group))
    except BaseException:
        if feeder is not None:
            feeder.close(raise_error=False)
        raise
    finally:
        bar.close()
    if feeder is not None:
        feeder.close()
    seconds = time.perf_counter() - began if began is not None else 0.0
    latency_ms = np.asarray(latencies) * 1000.0
    stats = {
        "n_images": len(samples),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(samples) / seconds, 3) if seconds else 0.0,
        "latency_p50_ms": round(float(np.percentile(latency_ms, 50)), 2) if latencies else 0.0,
        "latency_p95_ms": round(float(np.percentile(latency_ms, 95)), 2) if latencies else 0.0,
        **_peak_memory(tf),
        **environment(),
        **({"threads": metadata["threads"]} if metadata.get("threads") else {}),  # a runtime's own
        "precision": metadata.get("precision", settings.precision),
        "batch": settings.batch,
        "input_size": " ".join(f"{h}x{w}" for h, w in sorted(sizes)),
        "checkpoint": metadata.get("checkpoint"),
        "model": metadata.get("model"),
        "preset": metadata.get("preset"),
        "options": metadata.get("options"),
        "train_steps": metadata.get("steps"),
        "folded_bn": metadata.get("folded_bn", False),
        "input": opened.input_spec.to_dict(),
        # what ran the network: TensorFlow (its version in "tensorflow"), or e.g. "litert 2.3.0",
        # "onnxruntime 1.32.0 CPUExecutionProvider" (runtime, version, provider)
        "runtime": opened.runtime,
        **({"runtime_choice": metadata["runtime_choice"]} if metadata.get("runtime_choice") else {}),
        **options,
    }
    return Predicted(stats, tuple(sink.evaluate() for sink in sinks))


def _batches(samples: Sequence, frames, size: int, tf):
    """(samples, images (size, H, W, 3)) of up to `size` consecutive frames of one shape; a short batch is
    padded with its last frame (one traced shape per frame size), the samples say how many are real."""
    group: list = []
    images: list = []
    for sample, image in zip(samples, frames, strict=True):
        if images and (len(group) == size or tuple(image.shape) != tuple(images[0].shape)):
            yield group, _stack(images, size, tf)
            group, images = [], []
        group.append(sample)
        images.append(image)
    if group:
        yield group, _stack(images, size, tf)


def _stack(images: list, size: int, tf):
    if size == 1:
        return images[0]
    return tf.concat(images + [images[-1]] * (size - len(images)), axis=0)


def frame_predictor(
    model: OpenedModel | Any, settings: InferenceSettings = DEFAULT_SETTINGS
) -> Callable[[Any], tuple[np.ndarray, np.ndarray | None]]:
    """What the loop does to one normalised frame (1, H, W, 3): (train IDs (H, W) uint8, logits (H, W, C)
    float32 or None for an arg-max-only model) under `settings`' mode; for loops that make their own frames
    (bench robustness)."""
    opened = as_opened(model)
    forward = opened.logits_function()
    options = settings.mode_options()
    if opened.outputs == "train_ids" and (settings.mode != "whole" or settings.flip):
        raise UserError(
            f"{opened.metadata.get('checkpoint') or 'this model'} gives only its arg-max, no logits to "
            f"average: use --mode whole without --flip"
        )
    if settings.stride is not None and not slides(settings.mode, settings.crop):
        if not opened.strided:
            raise UserError(
                f"--stride {settings.stride[0]}x{settings.stride[1]} applies to --mode slide (or multiscale "
                f"with --crop), or to a model that slides its own windows (a LiteRT file of fixed input size)"
            )
        forward = functools.partial(forward, stride=settings.stride)
    predict = _argmax_only if opened.outputs == "train_ids" else _from_logits
    return lambda image: predict(forward, image, options)


def _from_logits(forward, image, options) -> tuple[np.ndarray, np.ndarray]:
    logits = frame_logits(forward, image, **options)
    return np.argmax(logits, axis=-1).astype(np.uint8), logits


def back_to_frame(train_ids, logits, size, spec) -> tuple[np.ndarray, np.ndarray | None]:
    """Arg-max and logits at the network's input size (a recipe with `InputSpec.size`) -> at the frame's
    `size`, as the recipe says (`InputSpec.output_resize`; an arg-max alone is resized nearest)."""
    from data.pipeline import frame_logits_from_network

    if logits is None:
        import tensorflow as tf

        resized = tf.image.resize(train_ids[None, :, :, None], size, method="nearest")
        return np.asarray(resized)[0, :, :, 0].astype(np.uint8), None
    logits = frame_logits_from_network(logits, size, spec)
    return np.argmax(logits, axis=-1).astype(np.uint8), logits


def _argmax_only(forward, image, options) -> tuple[np.ndarray, None]:
    return np.asarray(forward(image))[0].astype(np.uint8), None


def _peak_memory(tf) -> dict[str, float]:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1.0 / 1024 if os.uname().sysname != "Darwin" else 1.0 / (1024 * 1024)
    stats = {"peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)}
    if tf.config.list_physical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        stats["peak_gpu_memory_mb"] = round(peak / 2**20, 1)
    return stats
