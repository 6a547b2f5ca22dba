"""ESPNetv2 segmentation state dicts (sacmehta/EdgeNets `model/segmentation/espnetv2.py`) -> `espnetv2`.

Keys look like `base_net.level1.conv.weight`, `base_net.level{2,3,4}_0.eesp.*`, `base_net.level3.{i}.*`,
`bu_dec_l{1..4}.*`, `merge_enc_dec_l{2,3,4}.*`, `bu_br_l{2,3,4}.*`; our layers carry the same names
(models/espnetv2.py). The four level widths, the block counts, the decoder width and the classes are read
from the shapes; the width is named `s` when the widths are a row of the authors' table, else passed as
`channels`, so any width converts. The authors' EESP builds a PReLU (`eesp.module_act`) that a strided
block never applies: those tensors are the only ones not used. No TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.sources.convert import torch_layers
from bench.sources.convert.espnet import CITYSCAPES_CLASSES, size_from_name
from data.normalization import InputSpec

NAME = "espnetv2"
DEFAULT_SIZE = (512, 1024)
UNUSED = (r"\.eesp\.module_act\.weight$",)  # built by EESP.__init__, skipped by forward when stride is 2

PROTOCOL = {
    "mode": "whole",
    "scale": 1.0,
    "note": "EdgeNets test_segmentation.py: PIL RGB, Image.resize to 1024x512 (bilinear, antialiased), "
    "to_tensor (/ 255), ImageNet mean/std, one forward pass (the network upsamples its logits to its input, "
    "bilinear align_corners=True), arg-max, label map resized to the frame with PIL NEAREST",
}


def input_spec(size: tuple[int, int] = DEFAULT_SIZE) -> InputSpec:
    """The authors' recipe at network input `size` (height, width)."""
    return InputSpec(
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        channel_order="RGB",
        value_range=1.0,
        size=size,
        order="resize-then-normalize",
        resize="pil-bilinear",
        output_resize="nearest",
    )


INPUT = input_spec()


def matches(state: Mapping[str, np.ndarray]) -> bool:
    """Whether the keys are an EdgeNets ESPNetv2 segmentation network's."""
    return "base_net.level1.conv.weight" in state and "bu_dec_l1.projection_layer.cbr.0.weight" in state


def architecture(state: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], int]:
    """(espnetv2 builder options, number of train-ID classes) read from the keys and shapes."""
    from models.espnetv2 import WIDTHS

    def width(key: str) -> int:
        return torch_layers.shape(state, key, NAME)[0]

    channels = (
        width("base_net.level1.conv.weight"),
        width("base_net.level2_0.act.weight"),
        width("base_net.level3_0.act.weight"),
        width("base_net.level4_0.act.weight"),
    )
    blocks = [torch_layers.count(state, rf"base_net\.level{i}\.(\d+)\.", NAME) for i in (3, 4)]
    classes = width("bu_dec_l4.merge_layer.3.weight")
    background = classes == CITYSCAPES_CLASSES + 1
    options: dict[str, Any] = {
        "blocks": blocks,
        "decoder_base": width("bu_dec_l1.merge_layer.3.weight") // 4,
        "background": background,
    }
    named = [s for s, row in WIDTHS.items() if row == channels]
    if named:
        options["s"] = named[0]
    else:
        options["channels"] = list(channels)
    return options, classes - int(background)


def build_converted(state: Mapping[str, np.ndarray], src: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(model with every weight set from `state`, checkpoint metadata) for the ESPNetv2 file `src`."""
    options, num_classes = architecture(state)
    spec = input_spec(size_from_name(os.path.basename(src), DEFAULT_SIZE))
    return torch_layers.converted_model(
        "espnetv2", options, num_classes, state, src, NAME, spec, PROTOCOL, unused=UNUSED
    )
