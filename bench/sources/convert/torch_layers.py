"""PyTorch state dict <-> a Keras model whose weight-holding layers are named after the PyTorch modules.

The ESPNet and ESPNetv2 builders name each layer after the authors' module (`encoder.level1.conv`), so the
whole mapping is: layer `name` takes the tensors `name.<param>`, in Keras' layout. Every layer must be filled
and every tensor used (`num_batches_tracked` counters and the source's declared `unused` keys aside); a
missing, extra or mis-shaped tensor is an error naming its key. `state_dict` is the inverse, for round trips.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

import numpy as np

from data.errors import UserError

IGNORED_SUFFIXES = (".num_batches_tracked",)

# Keras layer class -> [(Keras weight name, PyTorch parameter name)]
SLOTS = {
    "Conv2D": [("kernel", "weight"), ("bias", "bias")],
    "DepthwiseConv2D": [("kernel", "weight"), ("bias", "bias")],
    "Conv2DTranspose": [("kernel", "weight"), ("bias", "bias")],
    "BatchNormalization": [
        ("gamma", "weight"),
        ("beta", "bias"),
        ("moving_mean", "running_mean"),
        ("moving_variance", "running_var"),
    ],
    "PReLU": [("alpha", "weight")],
}
# PyTorch layout -> Keras layout of a kernel, by Keras layer class
_TO_KERAS = {
    "Conv2D": (2, 3, 1, 0),  # (out, in/groups, kh, kw) -> (kh, kw, in/groups, out)
    "DepthwiseConv2D": (2, 3, 0, 1),  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
    "Conv2DTranspose": (2, 3, 1, 0),  # (in, out, kh, kw) -> (kh, kw, out, in)
}


def to_keras(kind: str, slot: str, array: np.ndarray) -> np.ndarray:
    """A PyTorch parameter in the layout of Keras layer class `kind`'s weight `slot`."""
    if slot == "kernel":
        return np.transpose(array, _TO_KERAS[kind])
    if kind == "PReLU":
        return array.reshape(1, 1, -1)  # nn.PReLU(C).weight (C,) -> alpha (1, 1, C) over shared H, W
    return array


def to_torch(kind: str, slot: str, array: np.ndarray) -> np.ndarray:
    """The inverse of `to_keras`."""
    if slot == "kernel":
        return np.transpose(array, np.argsort(_TO_KERAS[kind]))
    if kind == "PReLU":
        return array.reshape(-1)
    return array


def _weight_slots(layer) -> list[tuple[object, str, str]]:
    """[(weight, Keras slot, PyTorch parameter)] of a layer, by the layer's class."""
    kind = type(layer).__name__
    if kind not in SLOTS:
        raise UserError(f"our layer {layer.name} ({kind}) has no PyTorch counterpart to convert from")
    names = dict(SLOTS[kind])
    return [(w, w.name, names[w.name]) for w in layer.weights]


def _tensor_layout(key: str, layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Our weight's shape written in PyTorch's layout (for error messages)."""
    kind = type(layer).__name__
    if len(shape) == 4 and kind in _TO_KERAS:
        return tuple(shape[i] for i in np.argsort(_TO_KERAS[kind]))
    return (shape[-1],) if kind == "PReLU" else shape


def assign(
    model, state: Mapping[str, np.ndarray], path: str | os.PathLike, *, unused: Iterable[str] = ()
) -> int:
    """Set every weight of `model` from `state` by layer name; returns the number of tensors used.

    `unused`: regular expressions of keys the source holds but never computes with (named in its module).
    """
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        kind = type(layer).__name__
        values = []
        for weight, slot, param in _weight_slots(layer):
            key = f"{layer.name}.{param}"
            if key not in state:
                raise UserError(f"{path} lacks the tensor {key} (for our layer {layer.name})")
            array = to_keras(kind, slot, np.asarray(state[key]))
            if tuple(array.shape) != tuple(weight.shape):
                raise UserError(
                    f"{path}: tensor {key} has shape {tuple(state[key].shape)}, the architecture read from "
                    f"the other tensors needs {_tensor_layout(key, layer, tuple(weight.shape))}"
                )
            values.append(array.astype(weight.dtype))
            used.add(key)
        layer.set_weights(values)
    refuse_unplaced(state, used, path, unused=unused)
    return len(used)


def refuse_unplaced(
    state: Mapping[str, np.ndarray], used: set[str], path: str | os.PathLike, *, unused: Iterable[str] = ()
) -> None:
    """A file's tensor that no weight took is an error (`num_batches_tracked` counters and the keys
    matching the `unused` regular expressions aside): a converter that skips tensors converts wrong."""
    patterns = [re.compile(p) for p in unused]
    extra = sorted(
        k
        for k in state
        if k not in used and not k.endswith(IGNORED_SUFFIXES) and not any(p.search(k) for p in patterns)
    )
    if extra:
        more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
        raise UserError(
            f"{path} has {len(extra)} tensor(s) the detected architecture has no place for: "
            f"{', '.join(extra[:5])}{more}"
        )


def state_dict(model) -> dict[str, np.ndarray]:
    """The PyTorch state dict (float32 arrays, PyTorch layouts) that `assign` would read into `model`."""
    out = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        kind = type(layer).__name__
        for weight, slot, param in _weight_slots(layer):
            out[f"{layer.name}.{param}"] = to_torch(kind, slot, np.asarray(weight.numpy(), np.float32))
    return out


def count(state: Mapping[str, np.ndarray], pattern: str, source: str) -> int:
    """How many modules `pattern` (one group: the index) numbers, checked to be 0..n-1."""
    found = {int(m[1]) for key in state if (m := re.match(pattern, key))}
    if found != set(range(len(found))):
        raise UserError(f"{source} checkpoint: modules {pattern} are numbered {sorted(found)}, not 0..n-1")
    return len(found)


def shape(state: Mapping[str, np.ndarray], key: str, source: str) -> tuple[int, ...]:
    """The shape of tensor `key`, or an error saying the file is not a `source` state dict."""
    if key not in state:
        raise UserError(f"{source} checkpoint lacks {key}: it is not a {source} state dict")
    return tuple(state[key].shape)


def converted_model(
    model_name: str,
    options: Mapping[str, object],
    num_classes: int,
    state: Mapping[str, np.ndarray],
    src: str | os.PathLike,
    source: str,
    spec,
    protocol: Mapping[str, object],
    *,
    unused: Iterable[str] = (),
):
    """(registry model `model_name` built with `options`, every weight set from `state`; its checkpoint
    metadata, recording the input recipe `spec` and the authors' test `protocol`)."""
    from models import registry

    try:
        model = registry.build(model_name, num_classes=num_classes, **options)
    except (ValueError, UserError) as exc:
        raise UserError(f"{src}: the architecture read from its tensors cannot be built ({exc})") from exc
    used = assign(model, state, src, unused=unused)
    metadata = {
        "model": model_name,
        "preset": None,
        "options": dict(options),
        "num_classes": num_classes,
        "aux_head": False,
        "steps": None,
        "input": spec.to_dict(),
        "protocol": dict(protocol),
        "source": {"format": source, "file": os.path.basename(src), "tensors": used},
    }
    return model, metadata
