"""Analytic FLOP count of a Keras model at a given input size (convolutions and dense layers).

Convolutions are ~99% of a segmentation network's arithmetic; BatchNorm, activations, pooling and
resizing are memory-bound and left out, as in the FLOP figures papers report. A multiply-add counts as
2 FLOPs: conv FLOPs = 2 * H_out * W_out * k_h * k_w * C_in * C_out / groups.
"""

from __future__ import annotations

import math

import keras


def conv_flops(layer, output_shape) -> int:
    kh, kw = layer.kernel_size
    cin = layer.input.shape[-1]
    cout = output_shape[-1]
    groups = getattr(layer, "groups", 1) or 1
    return 2 * output_shape[1] * output_shape[2] * kh * kw * cin * cout // groups


def count_flops(model: keras.Model, height: int, width: int) -> int:
    """FLOPs of one forward pass on a `height x width` image (batch 1).

    The model is rebuilt from its config with a static input size so every layer's output shape is known.
    """
    config = model.get_config()
    static = keras.Model.from_config(_with_input_shape(config, (height, width)))
    total = 0
    for layer in static.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D):
            total += conv_flops(layer, layer.output.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.output.shape[1:-1]) * layer.input.shape[-1] * layer.units
    return int(total)


def _with_input_shape(config: dict, hw: tuple[int, int]) -> dict:
    """A functional-model config whose InputLayer has a fixed spatial size."""
    config = dict(config)
    layers = []
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer = dict(layer, config=dict(layer["config"]))
            shape = list(layer["config"]["batch_shape"])
            layer["config"]["batch_shape"] = [1, hw[0], hw[1], *shape[3:]]
        layers.append(layer)
    config["layers"] = layers
    return config
