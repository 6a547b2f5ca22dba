"""Dilated ResNet backbones (output stride 8 or 16) for segmentation, built with the functional API.

Layers carry the names of `keras.applications` ResNet50/101 (`conv1_conv`, `conv2_block1_1_conv`,
`conv4_block3_2_bn`, ...) and the same layer types (convolutions with bias, BatchNorm epsilon 1.001e-5,
stride on the first 1x1 convolution), so ImageNet weights transfer by name (models/imagenet.py) and the
classic-stem ResNet-50 has exactly the parameter count of `keras.applications.ResNet50(include_top=False)`.

What the segmentation variant changes (PSPNet, Zhao et al. 2017; DeepLab): the last stages do not stride
but dilate their 3x3 convolutions (stage 4 by 2, stage 5 by 4 at output stride 8), which keeps kernel shapes
and so keeps the ImageNet weights usable; optionally a "deep" stem of three 3x3 convolutions as in the
PSPNet paper's ResNet. Small variants for CPUs: basic-block ResNet-18/34 and a width multiplier.

The same layer names also carry PyTorch layouts (`BlockStyle`, `stem_channels`, `contract_dilation`):
mmsegmentation's ResNetV1c, whose published weights bench/sources/convert/ loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from models.blocks import BN_EPSILON, conv_bn

BLOCKS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)  # bottleneck blocks output 4x these
STEMS = ("classic", "deep")
STRIDE_ON = ("1x1", "3x3")
BASIC_DILATION = ("both", "first")


@dataclass(frozen=True)
class BackboneSpec:
    """What a head needs to know about the backbone it sits on."""

    depth: int
    channels: dict[str, int]  # endpoint name -> channels
    strides: dict[str, int]  # endpoint name -> output stride
    dilations: dict[str, int]  # endpoint name -> dilation of its 3x3 convolutions


def scaled(channels: int, width: float) -> int:
    """Channels times the width multiplier, at least 8 and a multiple of 8 once past 8 (SIMD friendly)."""
    return max(8, int(round(channels * width / 8.0)) * 8)


def stage_plan(output_stride: int) -> tuple[tuple[int, int], ...]:
    """(stride, dilation) of stages conv2..conv5 for an output stride of 8, 16 or 32."""
    plans = {
        8: ((1, 1), (2, 1), (1, 2), (1, 4)),
        16: ((1, 1), (2, 1), (2, 1), (1, 2)),
        32: ((1, 1), (2, 1), (2, 1), (2, 1)),
    }
    if output_stride not in plans:
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    return plans[output_stride]


@dataclass(frozen=True)
class BlockStyle:
    """How the convolutions of a residual block are laid out: the conventions differ between frameworks.

    keras.applications (the default, so ImageNet weights transfer): stride on the first 1x1 of a
    bottleneck, a bias on every convolution, BatchNorm epsilon 1.001e-5. PyTorch ResNets (torchvision
    v1.5, mmsegmentation's ResNetV1c, semseg): stride on the 3x3, no bias before BatchNorm, epsilon 1e-5;
    mmsegmentation's basic block dilates only its first 3x3 ("first"), ours both ("both").
    """

    stride_on: str = "1x1"  # bottleneck: "1x1" (keras.applications, Caffe) or "3x3" (PyTorch)
    conv_bias: bool = True
    bn_epsilon: float = BN_EPSILON
    basic_dilation: str = "both"  # basic block: dilate "both" 3x3 convs or the "first" only (mmseg)

    def __post_init__(self) -> None:
        if self.stride_on not in STRIDE_ON:
            raise ValueError(f"stride_on must be one of {STRIDE_ON}, got {self.stride_on!r}")
        if self.basic_dilation not in BASIC_DILATION:
            raise ValueError(f"basic_dilation must be one of {BASIC_DILATION}, got {self.basic_dilation!r}")

    def conv_bn(self, x, filters: int, kernel: int, name: str, **kwargs):
        return conv_bn(
            x, filters, kernel, name, use_bias=self.conv_bias, bn_epsilon=self.bn_epsilon, **kwargs
        )


def bottleneck_block(
    x,
    filters: int,
    name: str,
    *,
    stride: int,
    dilation: int,
    shortcut: bool,
    style: BlockStyle = BlockStyle(),
):
    """ResNet v1 bottleneck (1x1, 3x3 dilated, 1x1), stride on the first 1x1 or on the 3x3 (`style`)."""
    if shortcut:
        skip = style.conv_bn(x, 4 * filters, 1, name + "_0", stride=stride, activation=None)
    else:
        skip = x
    on_3x3 = style.stride_on == "3x3"
    x = style.conv_bn(x, filters, 1, name + "_1", stride=1 if on_3x3 else stride)
    x = style.conv_bn(x, filters, 3, name + "_2", stride=stride if on_3x3 else 1, dilation=dilation)
    x = style.conv_bn(x, 4 * filters, 1, name + "_3", activation=None)
    x = layers.Add(name=name + "_add")([skip, x])
    return layers.Activation("relu", name=name + "_out")(x)


def basic_block(
    x,
    filters: int,
    name: str,
    *,
    stride: int,
    dilation: int,
    shortcut: bool,
    style: BlockStyle = BlockStyle(),
):
    """ResNet-18/34 basic block (two 3x3 convolutions), stride on the first; dilated as `style` says."""
    if shortcut:
        skip = style.conv_bn(x, filters, 1, name + "_0", stride=stride, activation=None)
    else:
        skip = x
    x = style.conv_bn(x, filters, 3, name + "_1", stride=stride, dilation=1 if stride > 1 else dilation)
    second = dilation if style.basic_dilation == "both" else 1
    x = style.conv_bn(x, filters, 3, name + "_2", dilation=second, activation=None)
    x = layers.Add(name=name + "_add")([skip, x])
    return layers.Activation("relu", name=name + "_out")(x)


def stem(x, kind: str, out_channels: int, style: BlockStyle = BlockStyle()):
    """Classic 7x7/2 conv or deep stem (3x3/2, 3x3, 3x3 to out_channels/2, /2, out_channels), then 3x3/2
    max pooling: stride 4 in all. (Zero padding before the max pooling equals PyTorch's -inf padding: the
    input is a ReLU output.)"""
    if kind == "classic":
        x = style.conv_bn(x, out_channels, 7, "conv1", stride=2)
    elif kind == "deep":
        half = max(8, out_channels // 2)
        x = style.conv_bn(x, half, 3, "stem1", stride=2)
        x = style.conv_bn(x, half, 3, "stem2")
        x = style.conv_bn(x, out_channels, 3, "stem3")
    else:
        raise ValueError(f"stem must be one of {STEMS}, got {kind!r}")
    x = layers.ZeroPadding2D(padding=1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def resnet_features(
    inputs,
    *,
    depth: int = 50,
    width: float = 1.0,
    stem_type: str = "deep",
    output_stride: int = 8,
    stem_channels: int | None = None,
    contract_dilation: bool = False,
    style: BlockStyle = BlockStyle(),
) -> tuple[dict, BackboneSpec]:
    """Apply a dilated ResNet to `inputs`; return the stage endpoints and their description.

    Endpoints: "stem" (stride 4), "stage1".."stage4" (= keras.applications' conv2..conv5). The PSPNet
    head reads "stage4", its auxiliary head "stage3". stem_channels: the stem's output (default: 64 x width
    for the classic stem; for the deep stem the PSPNet paper's 128 x width with bottleneck blocks, 64 x width
    with basic ones; mmsegmentation's ResNetV1c uses 64 for every depth). contract_dilation: the first block
    of a dilated stage uses half its dilation (mmsegmentation: stage 3 block 1 dilation 1, stage 4 block 1
    dilation 2).
    """
    if depth not in BLOCKS:
        raise ValueError(f"depth must be one of {sorted(BLOCKS)}, got {depth}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    kind, counts = BLOCKS[depth]
    block = bottleneck_block if kind == "bottleneck" else basic_block
    expansion = 4 if kind == "bottleneck" else 1
    if stem_channels is None:
        stem_channels = scaled(128 if kind == "bottleneck" and stem_type == "deep" else 64, width)
    x = stem(inputs, stem_type, stem_channels, style)
    endpoints = {"stem": x}
    channels, strides, dilations = {"stem": x.shape[-1]}, {"stem": 4}, {"stem": 1}
    current_stride = 4
    in_channels = x.shape[-1]
    for index, (filters, n_blocks, (stride, dilation)) in enumerate(
        zip(STAGE_WIDTHS, counts, stage_plan(output_stride), strict=True)
    ):
        filters = scaled(filters, width)
        for b in range(n_blocks):
            name = f"conv{index + 2}_block{b + 1}"
            first = b == 0
            needs_shortcut = first and (stride > 1 or in_channels != filters * expansion)
            x = block(
                x,
                filters,
                name,
                stride=stride if first else 1,
                dilation=dilation // 2 if first and contract_dilation and dilation > 1 else dilation,
                shortcut=needs_shortcut or (first and kind == "bottleneck"),
                style=style,
            )
            in_channels = filters * expansion
        current_stride *= stride
        key = f"stage{index + 1}"
        endpoints[key] = x
        channels[key], strides[key], dilations[key] = in_channels, current_stride, dilation
    return endpoints, BackboneSpec(depth, channels, strides, dilations)


def dilated_resnet(input_shape=(None, None, 3), **options) -> keras.Model:
    """The backbone alone as a model whose output is the last stage (for tests and weight transfer)."""
    inputs = keras.Input(shape=input_shape, name="image")
    endpoints, _ = resnet_features(inputs, **options)
    return keras.Model(inputs, endpoints["stage4"], name="dilated_resnet")
