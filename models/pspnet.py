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
) -> keras.Model:
    """PSPNet, the paper's network: dilated ResNet + pyramid pooling (bins 1, 2, 3, 6).

    depth: 50 (paper), 101, or 18/34 (basic blocks, for CPUs); width: channel multiplier of the backbone;
    stem: "deep" (three 3x3 convs, paper) or "classic" (7x7, as keras.applications);
    output_stride: 8 (paper) or 16; ppm_channels: channels per pyramid branch (default C/len(bins));
    head_channels: the 3x3 fusion conv (paper 512); aux_channels: the auxiliary head's conv (256);
    weights: None (from scratch), "imagenet" or a keras.applications ResNet .h5 file (needs
    stem="classic", width=1.0 and depth 50 or 101).
    """
    import keras  # here, not at the top: listing the registry must not import TensorFlow

    from models import heads
    from models.backbones import resnet_features
    from models.imagenet import initialise_backbone

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features, _ = resnet_features(
        inputs, depth=depth, width=width, stem_type=stem, output_stride=output_stride
    )
    x = heads.pyramid_pooling(features["stage4"], bins=bins, channels=ppm_channels)
    logits = heads.classifier(x, num_classes, "psp_head", channels=head_channels, dropout=dropout)
    aux = (
        heads.auxiliary_head(features, num_classes, channels=aux_channels, dropout=dropout)
        if aux_head
        else None
    )
    model = heads.segmentation_model(inputs, logits, aux, name=f"pspnet_r{depth}")
    initialise_backbone(model, weights, depth=depth, stem=stem, width=width)
    return model
