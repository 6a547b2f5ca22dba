"""Tiny LiteRT files for the tests, converted from Keras: per-pixel networks (1x1 convolutions only), so
a correct tiling of any frame gives exactly what the same network computes on the whole frame."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

INPUT = (24, 32)


def per_pixel(keras, tf, size, channels: int, *, argmax: bool = False, seed: int = 0):
    """Conv 1x1 (8, ReLU) -> conv 1x1 (`channels`) [-> arg-max]; `size` None takes any frame size."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*size, 3) if size else (None, None, 3))
    x = keras.layers.Conv2D(8, 1, activation="relu", name="hidden")(inputs)
    x = keras.layers.Conv2D(channels, 1, name="classifier")(x)
    if argmax:  # tf.argmax: keras.ops.argmax adds a NaN check that LiteRT has no kernel for
        x = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1))(x)
    return keras.Model(inputs, x)


def convert(tf, model, path: Path, *, quantised_input=None) -> Path:
    """`model` as a .tflite file: float, or int8 weights and activations with `quantised_input`
    (tf.uint8 / tf.int8) input and int8 output, calibrated on inputs in -2..2."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantised_input is not None:
        rng = np.random.default_rng(0)
        size = tuple(model.input.shape[1:3])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.uniform(-2, 2, (1, *size, 3)).astype(np.float32)] for _ in range(16)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = quantised_input
        converter.inference_output_type = tf.int8
    with warnings.catch_warnings():  # TF asks for input statistics it does not need with a dataset
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        path.write_bytes(converter.convert())
    return path
