"""ESPNetv2 segmentation (Mehta et al., "ESPNetv2: A Light-weight, Power Efficient, and General Purpose
Convolutional Neural Network", CVPR 2019), the layout of the authors' EdgeNets
`model/segmentation/espnetv2.py`.

    encoder (EESPNet without level 5): level1 (3x3 s2 CBR) -> level2_0, level3_0 (+ blocks[0] EESP),
            level4_0 (+ blocks[1] EESP); each strided level = avg pool || strided EESP, concatenated, plus
            the image avg-pooled to that size through a 3x3 CBR and a 1x1 CB ("input reinforcement"), PReLU
    decoder: an efficient pyramid pool (EPP) on level 4; then three times: 2x bilinear up, + the level's
            features through an EfficientPWConv, BN + PReLU, EPP; the last EPP gives the classes;
            bilinear (align_corners=True) up to the input size

EESP block: grouped 1x1 reduce to n = C/4, four depthwise 3x3 convolutions whose dilations follow the
receptive-field limit of the level (sorted; hierarchically summed), BN + PReLU, grouped 1x1 expand + BN,
residual when shapes allow, PReLU. EPP: 1x1 CBR to `proj` channels; at scales 2.0, 1.5, 1.0, 0.5, 0.1 of
the map (min 5 pixels; up: bilinear, depthwise 3x3, adaptive pool back; down: adaptive pool, depthwise 3x3,
bilinear back), BN + PReLU, channel shuffle, grouped 3x3 CBR, 1x1 conv (+ BN + PReLU but in the last).
BatchNorm epsilon 1e-5. Layers are named after the authors' modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from models.registry import register

if TYPE_CHECKING:
    import keras

BN_EPSILON = 1e-5
WIDTHS = {  # s -> channels of level1..level4 (EdgeNets model/classification/espnetv2_config.py)
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
BRANCHES = 4
RECEPTIVE_LIMITS = {"level2_0": 13, "level3_0": 11, "level3": 9, "level4_0": 9, "level4": 7}
PYRAMID_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)
PYRAMID_MIN_SIZE = 5
REINFORCEMENT_CHANNELS = 3


def dilations(r_lim: int, branches: int = BRANCHES) -> list[int]:
    """Dilations of an EESP block: kernel sizes 3, 5, 7, ... capped at 3 past the limit, sorted, as rates."""
    sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(branches))
    return [(k - 1) // 2 for k in sizes]


def _cbr(x, channels: int, kernel: int, conv_name: str, bn_name: str, act_name: str, *, stride=1, groups=1):
    from models.espnet_blocks import bn_prelu, conv

    x = conv(x, channels, kernel, conv_name, stride=stride, groups=groups)
    return bn_prelu(x, bn_name, act_name, BN_EPSILON)


def eesp(x, channels: int, name: str, *, r_lim: int, stride: int = 1, branches: int = BRANCHES):
    """The authors' EESP; with stride 2 (inside a DownSampler) it returns before the residual and PReLU."""
    from keras import layers

    from models.espnet_blocks import batch_norm, bn_prelu, conv, prelu

    n = channels // branches
    if n * branches != channels:
        raise ValueError(f"EESP {name}: {channels} channels do not split into {branches} equal branches")
    reduced = _cbr(
        x, n, 1, f"{name}.proj_1x1.conv", f"{name}.proj_1x1.bn", f"{name}.proj_1x1.act", groups=branches
    )
    outputs: list = []
    for i, d in enumerate(dilations(r_lim, branches)):
        y = conv(reduced, n, 3, f"{name}.spp_dw.{i}.conv", stride=stride, dilation=d, groups=n)
        outputs.append(y if not outputs else layers.Add(name=f"{name}.hff{i}")([y, outputs[-1]]))
    y = layers.Concatenate(name=f"{name}.concat")(outputs)
    y = bn_prelu(y, f"{name}.br_after_cat.bn", f"{name}.br_after_cat.act", BN_EPSILON)
    y = conv(y, channels, 1, f"{name}.conv_1x1_exp.conv", groups=branches)
    y = batch_norm(y, f"{name}.conv_1x1_exp.bn", BN_EPSILON)
    if stride == 2:
        return y
    if x.shape[-1] == channels:
        y = layers.Add(name=f"{name}.residual")([y, x])
    return prelu(y, f"{name}.module_act")


def down_sampler(x, image_pooled, channels: int, name: str, *, r_lim: int):
    """The authors' DownSampler: [avg pool, strided EESP] + the reinforcement of the pooled image, PReLU."""
    from keras import layers

    from models.espnet_blocks import avg_pool_counting_padding, batch_norm, conv, prelu

    pooled = avg_pool_counting_padding(x, f"{name}.avg")
    strided = eesp(x, channels - x.shape[-1], f"{name}.eesp", r_lim=r_lim, stride=2)
    y = layers.Concatenate(name=f"{name}.concat")([pooled, strided])
    c = REINFORCEMENT_CHANNELS
    r = _cbr(
        image_pooled, c, 3, f"{name}.inp_reinf.0.conv", f"{name}.inp_reinf.0.bn", f"{name}.inp_reinf.0.act"
    )
    r = batch_norm(conv(r, channels, 1, f"{name}.inp_reinf.1.conv"), f"{name}.inp_reinf.1.bn", BN_EPSILON)
    y = layers.Add(name=f"{name}.reinforced")([y, r])
    return prelu(y, f"{name}.act")


def pyramid_pool(x, proj: int, channels: int, name: str, *, last: bool = False):
    """The authors' EfficientPyrPool (scales 2.0, 1.5, 1.0, 0.5, 0.1; last: no BN + PReLU, a biased 1x1)."""
    from keras import layers

    from models.espnet_blocks import (
        AdaptivePool,
        ChannelShuffle,
        ScaledResize,
        bn_prelu,
        conv,
        resize_align_corners,
    )

    x = _cbr(
        x,
        proj,
        1,
        f"{name}.projection_layer.cbr.0",
        f"{name}.projection_layer.cbr.1",
        f"{name}.projection_layer.cbr.2",
    )
    branches = []
    for i, scale in enumerate(PYRAMID_SCALES):
        stage = f"{name}.stages.{i}"
        if scale > 1.0:
            h = ScaledResize(scale, PYRAMID_MIN_SIZE, name=f"{stage}.up")(x)
            h = conv(h, proj, 3, stage, groups=proj)
            h = AdaptivePool(name=f"{stage}.pool")([h, x])
        elif scale < 1.0:
            h = AdaptivePool(scale, PYRAMID_MIN_SIZE, name=f"{stage}.pool")(x)
            h = conv(h, proj, 3, stage, groups=proj)
            h = resize_align_corners(h, x, f"{stage}.up")
        else:
            h = conv(x, proj, 3, stage, groups=proj)
        branches.append(h)
    y = layers.Concatenate(name=f"{name}.concat")(branches)
    y = bn_prelu(y, f"{name}.merge_layer.0.br.0", f"{name}.merge_layer.0.br.1", BN_EPSILON)
    y = ChannelShuffle(len(PYRAMID_SCALES), name=f"{name}.merge_layer.1")(y)
    y = _cbr(
        y,
        proj,
        3,
        f"{name}.merge_layer.2.cbr.0",
        f"{name}.merge_layer.2.cbr.1",
        f"{name}.merge_layer.2.cbr.2",
        groups=proj,
    )
    y = conv(y, channels, 1, f"{name}.merge_layer.3", bias=last)
    return y if last else bn_prelu(y, f"{name}.br.br.0", f"{name}.br.br.1", BN_EPSILON)


def pointwise_merge(x, channels: int, name: str):
    """The authors' EfficientPWConv: a grouped 3x3 CBR (gcd groups) gated by sigmoid(1x1(global mean))."""
    import math

    from keras import layers

    from models.espnet_blocks import conv

    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}.wt_layer.0")(x)
    gate = conv(gate, channels, 1, f"{name}.wt_layer.1")
    gate = layers.Activation("sigmoid", name=f"{name}.wt_layer.2")(gate)
    y = _cbr(
        x,
        channels,
        3,
        f"{name}.expansion_layer.cbr.0",
        f"{name}.expansion_layer.cbr.1",
        f"{name}.expansion_layer.cbr.2",
        groups=math.gcd(x.shape[-1], channels),
    )
    return layers.Multiply(name=f"{name}.gated")([y, gate])


PRESETS = {"tiny": {"s": 0.5, "blocks": (1, 1)}}  # tests; published Cityscapes widths: s = 0.5 .. 2.0


@register("espnetv2", presets=PRESETS)
def build(
    num_classes: int = 19,
    input_shape=(None, None, 3),
    *,
    aux_head: bool = False,
    s: float = 2.0,
    channels: Sequence[int] | None = None,
    blocks: Sequence[int] = (3, 7),
    decoder_base: int = 16,
    background: bool = True,
) -> keras.Model:
    """ESPNetv2 segmentation (the authors' layout): EESP encoder of width `s`, EPP decoder.

    s: the width multiplier, 0.5, 1.0, 1.25, 1.5 or 2.0 (channels of levels 1-4 from the authors' table);
    channels: the four level widths directly (overrides s); blocks: EESP blocks at levels 3 and 4 (3, 7);
    decoder_base: the decoder's widths are 4x, 3x and 2x it (16 for Cityscapes); background: one more
    output channel than `num_classes` (the authors' class trained on ignore pixels), dropped from the
    logits. Output: logits at the input size (bilinear, align_corners=True).
    """
    import keras
    from keras import layers

    from models.espnet_blocks import (
        avg_pool_counting_padding,
        bn_prelu,
        resize_align_corners,
        segmentation_outputs,
    )

    if channels is None:
        if float(s) not in WIDTHS:
            raise ValueError(
                f"ESPNetv2 width s={s} is not one of {sorted(WIDTHS)}: give channels=(c1, c2, c3, c4)"
            )
        channels = WIDTHS[float(s)]
    channels = tuple(int(c) for c in channels)
    if len(channels) != 4 or len(tuple(blocks)) != 2:
        raise ValueError(f"ESPNetv2 needs four level widths and two block counts, got {channels}, {blocks}")
    classes = num_classes + int(background)
    proj = min(classes // 2, decoder_base)
    decoder = (4 * decoder_base, 3 * decoder_base, 2 * decoder_base)

    image = keras.Input(shape=tuple(input_shape), name="image")
    level1 = _cbr(
        image, channels[0], 3, "base_net.level1.conv", "base_net.level1.bn", "base_net.level1.act", stride=2
    )
    pooled = [image]
    for k in range(4):  # the image at 1/2 .. 1/16, as the DownSamplers pool it
        pooled.append(avg_pool_counting_padding(pooled[-1], f"base_net.image_pool{k + 1}"))
    level2 = down_sampler(
        level1, pooled[2], channels[1], "base_net.level2_0", r_lim=RECEPTIVE_LIMITS["level2_0"]
    )
    x = down_sampler(level2, pooled[3], channels[2], "base_net.level3_0", r_lim=RECEPTIVE_LIMITS["level3_0"])
    for i in range(int(blocks[0])):
        x = eesp(x, channels[2], f"base_net.level3.{i}", r_lim=RECEPTIVE_LIMITS["level3"])
    level3 = x
    x = down_sampler(level3, pooled[4], channels[3], "base_net.level4_0", r_lim=RECEPTIVE_LIMITS["level4_0"])
    for i in range(int(blocks[1])):
        x = eesp(x, channels[3], f"base_net.level4.{i}", r_lim=RECEPTIVE_LIMITS["level4"])

    x = pyramid_pool(x, proj, decoder[0], "bu_dec_l1")
    for level, (skip, width) in enumerate(zip((level3, level2, level1), decoder, strict=True)):
        up = resize_align_corners(x, skip, f"bu_up_l{level + 2}")
        merged = pointwise_merge(skip, width, f"merge_enc_dec_l{level + 2}")
        x = layers.Add(name=f"bu_add_l{level + 2}")([merged, up])
        x = bn_prelu(x, f"bu_br_l{level + 2}.0", f"bu_br_l{level + 2}.1", BN_EPSILON)
        last = level == 2
        x = pyramid_pool(x, proj, classes if last else decoder[level + 1], f"bu_dec_l{level + 2}", last=last)
    x = resize_align_corners(x, image, "upsample")
    name = (
        f"espnetv2_s{s:g}" if channels == WIDTHS.get(float(s)) else "espnetv2_" + "_".join(map(str, channels))
    )
    return segmentation_outputs(image, x, num_classes, aux_head=aux_head, name=name)
