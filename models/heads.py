"""Segmentation heads that do not know which backbone feeds them: pyramid pooling and plain FCN.

Each takes a feature tensor and returns a feature or logits tensor at the feature's resolution; the model
builders upsample to the input. Convolutions before BatchNorm have no bias (BN's beta replaces it).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from models.blocks import BN_EPSILON, conv_bn
from models.layers import AdaptiveAveragePooling, resize_like


def pyramid_pooling(
    x,
    bins: Sequence[int] = (1, 2, 3, 6),
    channels: int | None = None,
    name: str = "ppm",
    *,
    bn_epsilon: float = BN_EPSILON,
    align_corners: bool = False,
):
    """PSPNet's pyramid pooling module: for each bin count b, adaptive average pooling to b x b,
    1x1 conv to `channels` (default C/len(bins)) + BN + ReLU, bilinear upsampling back to x's size;
    returns the concatenation [x, branch_1, ..., branch_n] in the order of `bins`: (1, 2, 3, 6) is
    mmsegmentation's and semseg's order, (6, 3, 2, 1) the Caffe release's (conv5_3, pool6, ..., pool1).
    """
    channels = channels or max(8, x.shape[-1] // len(bins))
    branches = [x]
    for b in bins:
        y = AdaptiveAveragePooling(b, name=f"{name}_pool{b}")(x)
        y = conv_bn(y, channels, 1, f"{name}_bin{b}", bn_epsilon=bn_epsilon)
        branches.append(resize_like(y, x, name=f"{name}_up{b}", align_corners=align_corners))
    return layers.Concatenate(name=f"{name}_concat")(branches)


def classifier(
    x,
    num_classes: int,
    name: str,
    *,
    channels: int,
    dropout: float = 0.1,
    num_convs: int = 1,
    bn_epsilon: float = BN_EPSILON,
):
    """`num_convs` 3x3 conv + BN + ReLU blocks, dropout, 1x1 conv to class logits (the FCN head)."""
    for i in range(num_convs):
        x = conv_bn(x, channels, 3, f"{name}_conv{i + 1}" if num_convs > 1 else name, bn_epsilon=bn_epsilon)
    if dropout:
        x = layers.Dropout(dropout, name=name + "_dropout")(x)
    return layers.Conv2D(num_classes, 1, name=name + "_classifier")(x)


def auxiliary_head(
    features: dict,
    num_classes: int,
    *,
    channels: int = 256,
    dropout: float = 0.1,
    bn_epsilon: float = BN_EPSILON,
):
    """PSPNet's deep supervision: an FCN classifier on stage 3 (conv4); its loss is weighted 0.4."""
    return classifier(
        features["stage3"], num_classes, "aux_head", channels=channels, dropout=dropout, bn_epsilon=bn_epsilon
    )


def segmentation_model(
    inputs, logits, aux=None, name: str = "segmentation", *, align_corners: bool = False
) -> keras.Model:
    """Upsample head outputs to the input size (float32 even under mixed precision) and wrap them by the
    registry's output contract: logits alone, or {"logits", "aux"} when there is an auxiliary head."""
    logits = resize_like(logits, inputs, name="logits", dtype="float32", align_corners=align_corners)
    if aux is None:
        return keras.Model(inputs, logits, name=name)
    aux = resize_like(aux, inputs, name="aux", dtype="float32", align_corners=align_corners)
    return keras.Model(inputs, {"logits": logits, "aux": aux}, name=name)
