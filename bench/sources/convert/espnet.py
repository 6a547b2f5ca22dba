"""ESPNet state dicts (sacmehta/ESPNet `test/Model.py`, class ESPNet) -> the `espnet` builder's options.

Keys look like `encoder.level1.conv.weight`, `encoder.level2.{i}.c1.conv.weight` (p blocks),
`encoder.level3.{i}.*` (q blocks), `up_l3.0.weight`, `combine_l2_l3.1.*`, `classifier.weight`; our layers
carry the same names (models/espnet.py), so the weights go across by name (torch_layers.py). p and q are
counted from the keys, the classes read from the last transposed convolution: 20 on Cityscapes, the 19
train IDs and the authors' "background" channel, which the model keeps inside and drops from its logits.
No TensorFlow here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.sources.convert import torch_layers
from data.normalization import InputSpec

NAME = "espnet"
CITYSCAPES_CLASSES = 19
DEFAULT_SIZE = (512, 1024)  # (height, width): the authors' test/VisualizeResults.py resizes to 1024x512

MEAN_BGR = (72.3923111, 82.90893555, 73.15840149)
STD_BGR = (45.3192215, 46.15289307, 44.91483307)

PROTOCOL = {
    "mode": "whole",
    "scale": 1.0,
    "note": "the authors' test/VisualizeResults.py: cv2.imread (BGR), (x - mean) / std on 0..255, "
    "cv2.resize to 1024x512 (bilinear, no antialias), / 255, one forward pass, arg-max at 1024x512; their "
    "label map is at 1024x512, so scoring at 2048x1024 repeats each pixel (nearest)",
}
_SIZE_IN_NAME = re.compile(r"(\d{2,5})x(\d{2,5})")


def input_spec(size: tuple[int, int] = DEFAULT_SIZE) -> InputSpec:
    """The authors' recipe at network input `size` (height, width)."""
    return InputSpec(
        mean=MEAN_BGR,
        std=STD_BGR,
        channel_order="BGR",
        value_range=255.0,
        divisor=255.0,
        size=size,
        order="normalize-then-resize",
        resize="bilinear",
        output_resize="nearest",
    )


INPUT = input_spec()


def matches(state: Mapping[str, np.ndarray]) -> bool:
    """Whether the keys are the authors' full ESPNet's (encoder + decoder)."""
    return "encoder.level1.conv.weight" in state and "up_l3.0.weight" in state


def size_from_name(file_name: str, default: tuple[int, int]) -> tuple[int, int]:
    """(height, width) from a `WIDTHxHEIGHT` in the file name (EdgeNets' `_city_1024x512`), else `default`."""
    match = _SIZE_IN_NAME.search(file_name)
    return (int(match[2]), int(match[1])) if match else default


def architecture(state: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], int]:
    """(espnet builder options, number of train-ID classes) read from the keys and shapes."""
    p = torch_layers.count(state, r"encoder\.level2\.(\d+)\.", NAME)
    q = torch_layers.count(state, r"encoder\.level3\.(\d+)\.", NAME)
    classes = torch_layers.shape(state, "classifier.weight", NAME)[1]  # ConvTranspose2d: (in, out, kh, kw)
    background = classes == CITYSCAPES_CLASSES + 1
    return {"p": p, "q": q, "background": background}, classes - int(background)


def build_converted(state: Mapping[str, np.ndarray], src: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(model with every weight set from `state`, checkpoint metadata) for the ESPNet file `src`."""
    options, num_classes = architecture(state)
    spec = input_spec(size_from_name(os.path.basename(src), DEFAULT_SIZE))
    return torch_layers.converted_model("espnet", options, num_classes, state, src, NAME, spec, PROTOCOL)
