"""The forward pass and its arg-max as one traced function, run where the logits are.

Today's per-frame step (`loop.frame_predictor`) copies the full float32 logits to the host and arg-maxes
them in numpy; on a GPU that copy and that arg-max cost more than the network. Here `tf.argmax` runs inside
the traced forward pass, on the device that computed the logits, and the logits leave the function only
when a sink asks for them (`with_logits`). The arg-max is the same one: the first class of the largest
logit, as numpy's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.sources.opener import OpenedModel
from models.inference_modes import InferenceSettings


def on_device(opened: OpenedModel, settings: InferenceSettings) -> bool:
    """Whether the loop can run `device_step` for this model and mode: a Keras model (not a bare forward
    callable such as LiteRT's), logits out, the whole frame at its own size (no windows, scales, flip or
    recipe input size, whose averaging and resizing work on host arrays)."""
    return (
        opened.keras is not None
        and opened.outputs == "logits"
        and settings.mode == "whole"
        and not settings.flip
        and settings.stride is None
        and opened.input_spec.size is None
    )


def device_step(opened: OpenedModel, *, with_logits: bool) -> Callable[[Any], tuple[Any, Any | None]]:
    """(B, H, W, 3) normalised frames -> (train IDs (B, H, W) uint8, logits (B, H, W, C) float32 or None),
    both still tensors on the device; XLA as `OpenedModel.logits_function` decides it. Kept on
    `opened`, so that a second run of the loop (validation during training, a benchmark's turns) does not
    trace again."""
    steps = vars(opened).setdefault("_device_steps", {})
    if with_logits not in steps:
        steps[with_logits] = _traced(opened, with_logits)
    return steps[with_logits]


def _traced(opened: OpenedModel, with_logits: bool) -> Callable[[Any], tuple[Any, Any | None]]:
    import tensorflow as tf

    model = opened.keras
    jit = bool(tf.config.list_physical_devices("GPU")) if opened.jit is None else opened.jit

    def step(images):
        outputs = model(images, training=False)
        logits = tf.cast(outputs["logits"] if isinstance(outputs, dict) else outputs, tf.float32)
        train_ids = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)
        return (train_ids, logits) if with_logits else train_ids

    traced = tf.function(step, jit_compile=jit)
    if with_logits:
        return traced
    return lambda images: (traced(images), None)
