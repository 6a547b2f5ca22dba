"""ESPNet (Mehta et al., "ESPNet: Efficient Spatial Pyramid of Dilated Convolutions", ECCV 2018).

The authors' full network (their `test/Model.py`, class ESPNet: the ESPNet-C encoder with the light decoder),
layer for layer, each weight-holding layer named after their module:

    image -> level1 (3x3 s2 conv 16 + BN + PReLU)       || the image avg-pooled once (3x3 s2, zeros counted)
          -> b1 (BN + PReLU on the concat, 19)
          -> level2_0 (strided ESP block to 64) -> p ESP blocks (residual)
          -> b2 (BN + PReLU on [level2, level2_0, image pooled twice], 131)
          -> level3_0 (strided ESP block to 128) -> q ESP blocks
          -> b3 (BN + PReLU on [level3_0, level3], 256) -> encoder.classifier (1x1 to C)
    decoder: br (BN) -> up_l3 (2x2 s2 transposed conv) || level3_C (1x1 of b2's output to C)
          -> combine_l2_l3 (BN + PReLU, ESP block 2C -> C, no residual) -> up_l2 (transposed conv, BR)
          -> conv (3x3 conv + BN + PReLU on [that, level1]) -> classifier (transposed conv) at input size

An ESP block: a reduce convolution to n = C/5 channels (1x1, or 3x3 stride 2 when it downsamples), five
3x3 convolutions of dilation 1, 2, 4, 8, 16 (the first to C - 4n channels), the dilated ones summed
hierarchically (d2, d2+d4, ...), concatenated, BN + PReLU (and the input added first when residual).
BatchNorm epsilon 1e-3 throughout. The decoder concatenates 2x upsamplings with the levels above, so the
authors' network takes sides that are multiples of 8 only; ours pads other sizes with zeros at the bottom
and right to the next multiple and crops the logits back (a no-op on the sizes theirs takes). The authors
trained 20 classes on Cityscapes (19 + "background" on the ignore pixels): `background=True` keeps that
channel in the network and drops it from the output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import register

if TYPE_CHECKING:
    import keras

BN_EPSILON = 1e-3
DILATIONS = (1, 2, 4, 8, 16)


def esp_block(x, channels: int, name: str, *, downsample: bool = False, residual: bool = True):
    """The authors' DilatedParllelResidualBlockB (or DownSamplerB with `downsample`)."""
    from keras import layers

    from models.espnet_blocks import batch_norm, bn_prelu, conv, prelu

    n = channels // 5
    reduced = conv(x, n, 3 if downsample else 1, f"{name}.c1.conv", stride=2 if downsample else 1)
    branches = [
        conv(reduced, channels - 4 * n if d == 1 else n, 3, f"{name}.d{d}.conv", dilation=d)
        for d in DILATIONS
    ]
    fused = [branches[1]]
    for d, branch in zip(DILATIONS[2:], branches[2:], strict=True):
        fused.append(layers.Add(name=f"{name}.add{d}")([fused[-1], branch]))
    out = layers.Concatenate(name=f"{name}.concat")([branches[0], *fused])
    if downsample:
        return prelu(batch_norm(out, f"{name}.bn", BN_EPSILON), f"{name}.act")
    if residual:
        out = layers.Add(name=f"{name}.residual")([x, out])
    return bn_prelu(out, f"{name}.bn.bn", f"{name}.bn.act", BN_EPSILON)


def _cbr(x, channels: int, kernel: int, name: str, stride: int = 1):
    from models.espnet_blocks import bn_prelu, conv

    x = conv(x, channels, kernel, f"{name}.conv", stride=stride)
    return bn_prelu(x, f"{name}.bn", f"{name}.act", BN_EPSILON)


def _up(x, channels: int, name: str):
    """nn.ConvTranspose2d(C, C, 2, stride=2, bias=False): each pixel becomes a 2x2 block."""
    from keras import layers

    return layers.Conv2DTranspose(channels, 2, strides=2, padding="valid", use_bias=False, name=name)(x)


PRESETS = {"tiny": {"p": 1, "q": 1}}  # tests; the defaults are the published Cityscapes p=2, q=8


@register("espnet", presets=PRESETS)
def build(
    num_classes: int = 19,
    input_shape=(None, None, 3),
    *,
    aux_head: bool = False,
    p: int = 2,
    q: int = 8,
    background: bool = True,
) -> keras.Model:
    """ESPNet (the authors' layout): p ESP blocks at 1/4 and q at 1/8 resolution, light decoder.

    p, q: the depth multipliers (published Cityscapes weights: p=2 with q=3, 5 or 8); background: the
    network has one more output channel than `num_classes` (the authors' class trained on ignore pixels),
    dropped from the logits this model returns. Input: BGR normalised as the checkpoint's recipe says, any
    size (padded to multiples of 8 inside). Output: logits at input size (transposed convolutions).
    """
    import keras
    from keras import layers

    from models.espnet_blocks import (
        CropLike,
        PadToMultiple,
        avg_pool_counting_padding,
        batch_norm,
        bn_prelu,
        conv,
        segmentation_outputs,
    )

    if p < 1 or q < 1:
        raise ValueError(f"ESPNet needs p >= 1 and q >= 1, got p={p}, q={q}")
    classes = num_classes + int(background)
    frame = keras.Input(shape=tuple(input_shape), name="image")
    image = PadToMultiple(8, name="pad_to_8")(frame)
    level1 = _cbr(image, 16, 3, "encoder.level1", stride=2)
    image_half = avg_pool_counting_padding(image, "encoder.sample1.pool.0")
    image_quarter = avg_pool_counting_padding(image_half, "encoder.sample2.pool.1")
    x = layers.Concatenate(name="encoder.b1.concat")([level1, image_half])
    x = bn_prelu(x, "encoder.b1.bn", "encoder.b1.act", BN_EPSILON)

    level2_0 = esp_block(x, 64, "encoder.level2_0", downsample=True)
    x = level2_0
    for i in range(p):
        x = esp_block(x, 64, f"encoder.level2.{i}")
    x = layers.Concatenate(name="encoder.b2.concat")([x, level2_0, image_quarter])
    level2_cat = bn_prelu(x, "encoder.b2.bn", "encoder.b2.act", BN_EPSILON)

    level3_0 = esp_block(level2_cat, 128, "encoder.level3_0", downsample=True)
    x = level3_0
    for i in range(q):
        x = esp_block(x, 128, f"encoder.level3.{i}")
    x = layers.Concatenate(name="encoder.b3.concat")([level3_0, x])
    x = bn_prelu(x, "encoder.b3.bn", "encoder.b3.act", BN_EPSILON)
    x = conv(x, classes, 1, "encoder.classifier.conv")

    x = _up(batch_norm(x, "br", BN_EPSILON), classes, "up_l3.0")
    level2_c = conv(level2_cat, classes, 1, "level3_C.conv")
    x = layers.Concatenate(name="combine_l2_l3.concat")([level2_c, x])
    x = bn_prelu(x, "combine_l2_l3.0.bn", "combine_l2_l3.0.act", BN_EPSILON)
    x = esp_block(x, classes, "combine_l2_l3.1", residual=False)
    x = _up(x, classes, "up_l2.0")
    x = bn_prelu(x, "up_l2.1.bn", "up_l2.1.act", BN_EPSILON)
    x = layers.Concatenate(name="conv.concat")([x, level1])
    x = _cbr(x, classes, 3, "conv")
    x = CropLike(name="crop_to_input")([_up(x, classes, "classifier"), frame])
    return segmentation_outputs(frame, x, num_classes, aux_head=aux_head, name=f"espnet_p{p}_q{q}")
