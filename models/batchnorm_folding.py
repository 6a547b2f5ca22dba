"""BatchNorm folded into the convolution before it: the graph prediction runs (`--no-fold-bn` keeps BN).

At inference BN is an affine map per channel, y = gamma * (x - mean) / sqrt(var + eps) + beta, so a
convolution followed by BN is one convolution with kernel W * s and bias (b - mean) * s + beta,
s = gamma / sqrt(var + eps). Folding removes a memory-bound pass over every activation tensor. The folded
model computes the same function as the original in inference mode (to float rounding); it cannot train.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import keras
import numpy as np


def _references(node: Any):
    """Every keras_history entry ([layer, node, tensor]) in a serialised inbound-node structure."""
    if isinstance(node, dict):
        if "keras_history" in node:
            yield node["keras_history"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _references(value)


def _conv_bn_pairs(config: dict) -> dict[str, str]:
    """BN layer name -> name of the Conv2D that feeds it alone."""
    by_name = {layer["name"]: layer for layer in config["layers"]}
    consumers = Counter(ref[0] for layer in config["layers"] for ref in _references(layer["inbound_nodes"]))
    consumers.update(ref[0] for ref in _references(config["output_layers"]))
    pairs = {}
    for layer in config["layers"]:
        if layer["class_name"] != "BatchNormalization":
            continue
        refs = list(_references(layer["inbound_nodes"]))
        if len(refs) != 1:
            continue
        source = by_name[refs[0][0]]
        if source["class_name"] == "Conv2D" and consumers[source["name"]] == 1:
            pairs[layer["name"]] = source["name"]
    return pairs


def _rewire(node: Any, renames: dict[str, str]) -> None:
    for ref in _references(node):
        if ref[0] in renames:
            ref[0] = renames[ref[0]]


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of functional `model` with every Conv2D -> BatchNormalization pair merged into one Conv2D."""
    import copy

    config = copy.deepcopy(model.get_config())
    pairs = _conv_bn_pairs(config)
    folded_convs = set(pairs.values())
    layers = []
    for layer in config["layers"]:
        if layer["name"] in pairs:
            continue
        if layer["name"] in folded_convs:
            layer["config"]["use_bias"] = True
        _rewire(layer["inbound_nodes"], pairs)
        layers.append(layer)
    config["layers"] = layers
    _rewire(config["output_layers"], pairs)
    folded = keras.Model.from_config(config)
    conv_to_bn = {conv: bn for bn, conv in pairs.items()}
    for layer in folded.layers:
        source = model.get_layer(layer.name)
        if layer.name not in conv_to_bn:
            layer.set_weights(source.get_weights())
            continue
        kernel, *bias = source.get_weights()
        bn = model.get_layer(conv_to_bn[layer.name])
        gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
        scale = gamma / np.sqrt(var + bn.epsilon)
        bias = np.asarray(bias[0], dtype=np.float64) if bias else np.zeros_like(mean)
        folded_bias = (bias - mean) * scale + beta
        layer.set_weights([(kernel * scale).astype(kernel.dtype), folded_bias.astype(kernel.dtype)])
    return folded
