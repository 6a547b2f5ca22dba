"""PSPNet (Zhao et al., "Pyramid Scene Parsing Network", CVPR 2017) on a dilated ResNet.

    image -> dilated ResNet (output stride 8: stage 3 = conv4 dilation 2, stage 4 = conv5 dilation 4,
             no striding there; deep stem)
          -> pyramid pooling (bins 1, 2, 3, 6; 1x1 conv to C/4 + BN + ReLU each; bilinear up; concat)
          -> 3x3 conv 512 + BN + ReLU -> dropout 0.1 -> 1x1 classifier -> bilinear up to the input
    auxiliary head on stage 3 (conv4): 3x3 conv 256 + BN + ReLU -> dropout 0.1 -> 1x1 -> bilinear up
    (the paper weights its loss 0.4; the loss lives in training, not here).

Input: a normalised float image batch of any size (None allowed). Output: logits (B, H, W, num_classes);
with `aux_head=True` a dict {"logits", "aux"}, both at input resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from models.registry import register

if TYPE_CHECKING:
    import keras

MMSEG_LAYOUT = {
    "depth": 50,
    "stem_channels": 64,  # ResNetV1c deep stem 3 -> 32 -> 32 -> 64
    "stride_on": "3x3",
    "conv_bias": False,
    "bn_epsilon": 1e-5,
    "contract_dilation": True,
    "basic_dilation": "first",
    "align_corners": False,
    "ppm_channels": 512,
    "head_channels": 512,
    "aux_channels": 256,
}
"""mmsegmentation's PSPNet R-50-D8 exactly (mmseg/models/backbones/resnet.py, decode_heads/psp_head.py)."""

PRESETS = {
    # CPU training on 2 cores (batch 8 of 256x256 in ~0.7 s a step): ResNet-18 basic blocks at quarter
    # width, output stride 16 (output stride 8 costs 3x the FLOPs at this size and its dilated convs run
    # slowly on CPU; "cpu-os8" keeps the paper's geometry)
    "cpu": {
        "depth": 18,
        "width": 0.25,
        "output_stride": 16,
        "ppm_channels": 16,
        "head_channels": 64,
        "aux_channels": 32,
    },
    "cpu-os8": {"depth": 18, "width": 0.25, "ppm_channels": 16, "head_channels": 64, "aux_channels": 32},
    # tests: builds and runs in milliseconds
    "tiny": {"depth": 18, "width": 0.125, "ppm_channels": 8, "head_channels": 16, "aux_channels": 8},
    # mmsegmentation's PSPNet R-50-D8 (configs/_base_/models/pspnet_r50-d8.py), the layout its published
    # Cityscapes weights need (`python -m bench convert`): ResNetV1c, PSPHead 512, FCNHead 256
    "mmseg": MMSEG_LAYOUT,
    "mmseg-r101": {**MMSEG_LAYOUT, "depth": 101},
    # configs/pspnet/pspnet_r18-d8_*: basic blocks, head 128, auxiliary head 64
    "mmseg-r18": {**MMSEG_LAYOUT, "depth": 18, "ppm_channels": 128, "head_channels": 128, "aux_channels": 64},
}


@register("pspnet", presets=PRESETS)
def build(
    num_classes: int = 19,
    input_shape=(None, None, 3),
    *,
    aux_head: bool = False,
    depth: int = 50,
    width: float = 1.0,
    stem: str = "deep",
    output_stride: int = 8,
    bins: Sequence[int] = (1, 2, 3, 6),
    ppm_channels: int | None = None,
    head_channels: int = 512,
    aux_channels: int = 256,
    dropout: float = 0.1,
    weights: str | None = None,
    stem_channels: int | None = None,
    stride_on: str = "1x1",
    conv_bias: bool = True,
    bn_epsilon: float | None = None,
    contract_dilation: bool = False,
    basic_dilation: str = "both",
    align_corners: bool = False,
) -> keras.Model:
    """PSPNet, the paper's network: dilated ResNet + pyramid pooling (bins 1, 2, 3, 6).

    depth: 50 (paper), 101, or 18/34 (basic blocks, for CPUs); width: channel multiplier of the backbone;
    stem: "deep" (three 3x3 convs, paper) or "classic" (7x7, as keras.applications);
    output_stride: 8 (paper) or 16; ppm_channels: channels per pyramid branch (default C/len(bins));
    head_channels: the 3x3 fusion conv (paper 512); aux_channels: the auxiliary head's conv (256);
    weights: None (from scratch), "imagenet" or a keras.applications ResNet .h5 file (needs
    stem="classic", width=1.0 and depth 50 or 101).
    Layout (defaults: keras.applications' conventions; preset "mmseg" selects mmsegmentation's):
    stem_channels: the stem's output channels (see backbones.resnet_features); stride_on: "1x1" or "3x3"
    of a bottleneck; conv_bias: bias on backbone convolutions; bn_epsilon: every BatchNorm's epsilon
    (default models.blocks.BN_EPSILON, keras.applications' 1.001e-5);
    contract_dilation: first block of a dilated stage at half the dilation; basic_dilation: "both" 3x3s
    of a basic block dilated or the "first" only; align_corners: of the pyramid's and the final bilinear
    resizes; the pyramid's concat order follows `bins`.
    """
    import keras  # here, not at the top: listing the registry must not import TensorFlow

    from models import heads
    from models.backbones import BlockStyle, resnet_features
    from models.blocks import BN_EPSILON
    from models.imagenet import initialise_backbone

    bn_epsilon = BN_EPSILON if bn_epsilon is None else bn_epsilon
    style = BlockStyle(
        stride_on=stride_on, conv_bias=conv_bias, bn_epsilon=bn_epsilon, basic_dilation=basic_dilation
    )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features, _ = resnet_features(
        inputs,
        depth=depth,
        width=width,
        stem_type=stem,
        output_stride=output_stride,
        stem_channels=stem_channels,
        contract_dilation=contract_dilation,
        style=style,
    )
    x = heads.pyramid_pooling(
        features["stage4"],
        bins=bins,
        channels=ppm_channels,
        bn_epsilon=bn_epsilon,
        align_corners=align_corners,
    )
    logits = heads.classifier(
        x, num_classes, "psp_head", channels=head_channels, dropout=dropout, bn_epsilon=bn_epsilon
    )
    aux = (
        heads.auxiliary_head(
            features, num_classes, channels=aux_channels, dropout=dropout, bn_epsilon=bn_epsilon
        )
        if aux_head
        else None
    )
    model = heads.segmentation_model(
        inputs, logits, aux, name=f"pspnet_r{depth}", align_corners=align_corners
    )
    initialise_backbone(model, weights, depth=depth, stem=stem, width=width)
    return model
