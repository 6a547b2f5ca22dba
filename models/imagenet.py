"""ImageNet initialisation: copy `keras.applications` ResNet50/101 weights into the dilated backbone.

Dilation changes neither kernel shapes nor layer names (models/backbones.py keeps keras.applications'
names), so the transfer is a name-by-name copy with a shape check. The weights come from the Keras cache
(`~/.keras/models/`), downloaded on first use; offline that download fails, and the error says so and how
to proceed (put the file there, give a local .h5 path, or train from scratch with `weights=None`).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from models.registry import RegistryError

WEIGHT_FILES = {
    50: "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    101: "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
}


class ImageNetWeightsError(RegistryError):
    """ImageNet weights cannot be loaded or do not fit the requested backbone."""


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy every weighted layer of `source` into the layer of the same name in `target`.

    Returns the names copied. Raises ImageNetWeightsError if a layer is missing in the target or a shape
    differs, so a silent partial initialisation cannot happen.
    """
    copied = []
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        try:
            dest = target.get_layer(layer.name)
        except ValueError as exc:
            raise ImageNetWeightsError(
                f"layer '{layer.name}' of {source.name} has no counterpart in {target.name}"
            ) from exc
        mine = dest.get_weights()
        if [w.shape for w in mine] != [w.shape for w in weights]:
            raise ImageNetWeightsError(
                f"layer '{layer.name}': shapes {[w.shape for w in weights]} of {source.name} do not fit "
                f"{[w.shape for w in mine]} of {target.name}"
            )
        dest.set_weights(weights)
        copied.append(layer.name)
    return copied


def imagenet_resnet(depth: int, weights: str = "imagenet") -> keras.Model:
    """keras.applications ResNet50/101 without top, with `weights` ("imagenet" or a local .h5 path)."""
    constructors = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101}
    if depth not in constructors:
        raise ImageNetWeightsError(
            f"ImageNet weights exist for ResNet depth 50 and 101 only, not {depth}; "
            f"pass weights=None to train from scratch"
        )
    if weights != "imagenet" and not Path(weights).is_file():
        raise ImageNetWeightsError(
            f"weights file '{weights}' does not exist; give a keras.applications "
            f"ResNet{depth} no-top .h5 file, 'imagenet' or None"
        )
    try:
        return constructors[depth](weights=weights, include_top=False, input_shape=(None, None, 3))
    except ImageNetWeightsError:
        raise
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on a failed download
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / WEIGHT_FILES[depth]
        raise ImageNetWeightsError(
            f"could not load ImageNet weights for ResNet{depth} ({exc}). Without internet access the "
            f"download cannot work: put '{WEIGHT_FILES[depth]}' at {cache}, pass weights=<path to that "
            f".h5 file>, or pass weights=None to train from scratch"
        ) from exc


def initialise_backbone(
    model: keras.Model, weights: str | None, *, depth: int, stem: str, width: float
) -> list[str]:
    """Load `weights` ("imagenet", an .h5 path or None) into the backbone layers of `model`."""
    if weights is None:
        return []
    if stem != "classic" or width != 1.0 or depth not in WEIGHT_FILES:
        raise ImageNetWeightsError(
            f"ImageNet weights fit the keras.applications ResNet50/101 only: pass depth=50 or 101, "
            f"stem='classic' and width=1.0 with weights={weights!r} (got depth={depth}, stem={stem!r}, "
            f"width={width}), or weights=None"
        )
    return transfer_weights(imagenet_resnet(depth, weights), model)
