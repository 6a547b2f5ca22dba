"""mmsegmentation PSPNet state dicts -> the `pspnet` builder's options and layer names.

The layout is mmsegmentation 1.x's `EncoderDecoder` with a `ResNetV1c` backbone, a `PSPHead` and an optional
`FCNHead` auxiliary head (configs/_base_/models/pspnet_r50-d8.py and configs/pspnet/*); the 0.x releases of
2020 that published the Cityscapes weights use the same module names. Keys look like

    backbone.stem.{0,3,6}.weight, backbone.stem.{1,4,7}.{weight,bias,running_mean,running_var}
    backbone.layer{1..4}.{block}.conv{k}.weight, .bn{k}.*, .downsample.{0,1}.*
    decode_head.psp_modules.{j}.1.{conv,bn}.*, decode_head.bottleneck.{conv,bn}.*, decode_head.conv_seg.*
    auxiliary_head.convs.0.{conv,bn}.*, auxiliary_head.conv_seg.*

Depth, widths and class count are read from the keys and shapes; what shapes cannot tell (the pyramid's
bins, dilations) is mmsegmentation's D8 configuration. No TensorFlow here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from data.errors import UserError
from data.normalization import InputSpec

NAME = "mmseg"

INPUT = InputSpec(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), channel_order="RGB")
"""SegDataPreProcessor of configs/_base_/models/pspnet_r50-d8.py: images loaded BGR, bgr_to_rgb=True."""

PROTOCOL = {
    "mode": "whole",
    "scale": 1.0,
    "note": "mmseg 512x1024 configs test the whole image at full resolution (Resize to 2048x1024, "
    "keep_ratio: 1024x2048 Cityscapes frames unchanged), bilinear align_corners=False",
}
"""How the published numbers were measured (configs/_base_/datasets/cityscapes.py test_pipeline)."""

BINS = (1, 2, 3, 6)  # PSPHead pool_scales in every mmseg PSPNet config
BN_SLOTS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
CONV_SLOTS = {"weight": "kernel", "bias": "bias"}
# from configs/_base_/models/pspnet_r50-d8.py (mmseg layout; see models/pspnet.py MMSEG_LAYOUT)
_OUTPUT_STRIDE = re.compile(r"(?:^|[_-])d(8|16|32)(?:[_-]|$)")


@dataclass(frozen=True)
class Module:
    """One source module and the layer of ours that takes its tensors."""

    source: str  # e.g. "backbone.layer1.0.conv1"
    layer: str  # e.g. "conv2_block1_1_conv"
    kind: str  # "conv" or "bn"

    @property
    def slots(self) -> dict[str, str]:
        """Source parameter name -> Keras weight name."""
        return CONV_SLOTS if self.kind == "conv" else BN_SLOTS


def matches(state: Mapping[str, np.ndarray]) -> bool:
    """Whether the keys are an mmsegmentation PSPNet's."""
    return "backbone.stem.0.weight" in state and "decode_head.psp_modules.0.1.conv.weight" in state


def _shape(state: Mapping[str, np.ndarray], key: str) -> tuple[int, ...]:
    if key not in state:
        raise UserError(
            f"mmseg checkpoint lacks {key}: it is not an mmsegmentation PSPNet (ResNetV1c) state dict"
        )
    return tuple(state[key].shape)


def _count(state: Mapping[str, np.ndarray], pattern: str) -> int:
    found = {int(m[1]) for key in state if (m := re.match(pattern, key))}
    if found != set(range(len(found))):
        raise UserError(f"mmseg checkpoint: modules {pattern} are numbered {sorted(found)}, not 0..n-1")
    return len(found)


def architecture(
    state: Mapping[str, np.ndarray], *, file_name: str = ""
) -> tuple[dict[str, object], int, bool]:
    """(pspnet builder options, number of classes, has auxiliary head) read from keys and shapes.

    The output stride is 8 (all published PSPNet Cityscapes checkpoints are D8) unless the file name
    says d16 or d32.
    """
    from models.backbones import BLOCKS, STAGE_WIDTHS
    from models.pspnet import MMSEG_LAYOUT

    counts = tuple(_count(state, rf"backbone\.layer{i}\.(\d+)\.") for i in range(1, 5))
    kind = "bottleneck" if "backbone.layer1.0.conv3.weight" in state else "basic"
    depths = [d for d, spec in BLOCKS.items() if spec == (kind, counts)]
    if not depths:
        raise UserError(
            f"mmseg checkpoint has {kind} blocks {counts} per stage: no ResNet depth of "
            f"{sorted(BLOCKS)} has that layout"
        )
    base = _shape(state, "backbone.layer1.0.conv1.weight")[0]
    stem_channels = _shape(state, "backbone.stem.6.weight")[0]
    n_bins = _count(state, r"decode_head\.psp_modules\.(\d+)\.")
    if n_bins != len(BINS):
        raise UserError(f"mmseg checkpoint has {n_bins} pyramid branches; PSPHead's pool scales are {BINS}")
    num_classes = _shape(state, "decode_head.conv_seg.weight")[0]
    has_aux = any(k.startswith("auxiliary_head.") for k in state)
    options: dict[str, object] = {
        **MMSEG_LAYOUT,
        "depth": depths[0],
        "width": base / STAGE_WIDTHS[0],
        "stem_channels": stem_channels,
        "ppm_channels": _shape(state, "decode_head.psp_modules.0.1.conv.weight")[0],
        "head_channels": _shape(state, "decode_head.bottleneck.conv.weight")[0],
        "bins": BINS,
    }
    if has_aux:
        if "auxiliary_head.convs.1.conv.weight" in state or "auxiliary_head.conv_cat.conv.weight" in state:
            raise UserError("mmseg checkpoint's auxiliary FCNHead has more than one conv: not PSPNet's")
        options["aux_channels"] = _shape(state, "auxiliary_head.convs.0.conv.weight")[0]
    else:
        options.pop("aux_channels", None)
    stride = _OUTPUT_STRIDE.search(file_name)
    if stride:
        options["output_stride"] = int(stride[1])
    return options, num_classes, has_aux


def modules(options: Mapping[str, object], *, has_aux: bool) -> list[Module]:
    """Every source module of the architecture `options` describes, with the layer of ours it fills."""
    from models.backbones import BLOCKS

    kind, counts = BLOCKS[int(options["depth"])]
    out = []
    for n, index in enumerate((0, 3, 6)):  # nn.Sequential(conv, bn, relu) x 3
        out += [
            Module(f"backbone.stem.{index}", f"stem{n + 1}_conv", "conv"),
            Module(f"backbone.stem.{index + 1}", f"stem{n + 1}_bn", "bn"),
        ]
    convs = 3 if kind == "bottleneck" else 2
    for stage, blocks in enumerate(counts):
        for b in range(blocks):
            src, ours = f"backbone.layer{stage + 1}.{b}", f"conv{stage + 2}_block{b + 1}"
            if b == 0:  # downsample where ours has a projection shortcut; absent ones surface as extra keys
                out += [
                    Module(f"{src}.downsample.0", f"{ours}_0_conv", "conv"),
                    Module(f"{src}.downsample.1", f"{ours}_0_bn", "bn"),
                ]
            for k in range(1, convs + 1):
                out += [
                    Module(f"{src}.conv{k}", f"{ours}_{k}_conv", "conv"),
                    Module(f"{src}.bn{k}", f"{ours}_{k}_bn", "bn"),
                ]
    for j, b in enumerate(options.get("bins", BINS)):
        out += [
            Module(f"decode_head.psp_modules.{j}.1.conv", f"ppm_bin{b}_conv", "conv"),
            Module(f"decode_head.psp_modules.{j}.1.bn", f"ppm_bin{b}_bn", "bn"),
        ]
    out += [
        Module("decode_head.bottleneck.conv", "psp_head_conv", "conv"),
        Module("decode_head.bottleneck.bn", "psp_head_bn", "bn"),
        Module("decode_head.conv_seg", "psp_head_classifier", "conv"),
    ]
    if has_aux:
        out += [
            Module("auxiliary_head.convs.0.conv", "aux_head_conv", "conv"),
            Module("auxiliary_head.convs.0.bn", "aux_head_bn", "bn"),
            Module("auxiliary_head.conv_seg", "aux_head_classifier", "conv"),
        ]
    return out


def to_keras(kind: str, slot: str, array: np.ndarray) -> np.ndarray:
    """A PyTorch parameter in Keras' layout: conv kernels (O, I, kh, kw) -> (kh, kw, I, O)."""
    if kind == "conv" and slot == "weight":
        if array.ndim != 4:
            raise ValueError(f"a convolution weight has 4 dimensions, this one {array.shape}")
        return np.transpose(array, (2, 3, 1, 0))
    return array
