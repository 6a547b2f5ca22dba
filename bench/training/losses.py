"""Training losses of the segmentation recipes: pixel cross-entropy over non-ignored pixels, pixel accuracy.

Sums divided by a normaliser the caller may give: a replica of a distributed step passes the global count
of valid pixels, so the summed gradients are one process's (bench/training/train_step.py).
"""

from __future__ import annotations

from typing import Any


def valid_pixels(labels):
    """Number of pixels whose label is not 255, as float32 (the loss normaliser)."""
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(labels, tf.int32), 255), tf.float32))


def segmentation_loss(logits, labels, normalizer=None):
    """Softmax cross-entropy summed over pixels whose label is not 255, divided by `normalizer` (default:
    their count; a replica passes the global count); 0 when there are none."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, 255)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, labels, 0), logits=tf.cast(logits, tf.float32)
    )
    weights = tf.cast(valid, tf.float32)
    normalizer = tf.reduce_sum(weights) if normalizer is None else normalizer
    return tf.reduce_sum(per_pixel * weights) / tf.maximum(normalizer, 1.0)


def pixel_accuracy(logits, labels, normalizer=None):
    """Non-ignored pixels whose arg-max class is the label, divided by `normalizer` (default: their count)."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(tf.not_equal(labels, 255), tf.float32)
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
    normalizer = tf.reduce_sum(valid) if normalizer is None else normalizer
    return tf.reduce_sum(hit * valid) / tf.maximum(normalizer, 1.0)


def split_outputs(outputs) -> tuple[Any, Any]:
    """(logits, aux or None) from a model output: a dict per the registry contract, or a bare tensor."""
    if isinstance(outputs, dict):
        return outputs["logits"], outputs.get("aux")
    return outputs, None
