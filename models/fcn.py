"""FCN baseline: PSPNet's dilated ResNet with a plain convolutional head and no pyramid pooling.

Same backbone, same auxiliary head, same options, so that `pspnet` vs `fcn` measures what the pyramid
pooling module adds (the PSPNet paper's ablation against its dilated-FCN baseline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import register

if TYPE_CHECKING:
    import keras

PRESETS = {  # as pspnet's presets (see models/pspnet.py for the reasoning)
    "cpu": {"depth": 18, "width": 0.25, "output_stride": 16, "head_channels": 64, "aux_channels": 32},
    "cpu-os8": {"depth": 18, "width": 0.25, "head_channels": 64, "aux_channels": 32},
    "tiny": {"depth": 18, "width": 0.125, "head_channels": 16, "aux_channels": 8},
}


@register("fcn", presets=PRESETS)
def build(
    num_classes: int = 19,
    input_shape=(None, None, 3),
    *,
    aux_head: bool = False,
    depth: int = 50,
    width: float = 1.0,
    stem: str = "deep",
    output_stride: int = 8,
    head_channels: int = 512,
    num_convs: int = 2,
    aux_channels: int = 256,
    dropout: float = 0.1,
    weights: str | None = None,
) -> keras.Model:
    """Dilated-ResNet FCN baseline (no pyramid pooling), to measure what the pyramid adds.

    Options as for pspnet; num_convs: 3x3 conv + BN + ReLU blocks of `head_channels` in the head
    (2, as mmsegmentation's FCNHead).
    """
    import keras  # here, not at the top: listing the registry must not import TensorFlow

    from models import heads
    from models.backbones import resnet_features
    from models.imagenet import initialise_backbone

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    features, _ = resnet_features(
        inputs, depth=depth, width=width, stem_type=stem, output_stride=output_stride
    )
    logits = heads.classifier(
        features["stage4"],
        num_classes,
        "fcn_head",
        channels=head_channels,
        dropout=dropout,
        num_convs=num_convs,
    )
    aux = (
        heads.auxiliary_head(features, num_classes, channels=aux_channels, dropout=dropout)
        if aux_head
        else None
    )
    model = heads.segmentation_model(inputs, logits, aux, name=f"fcn_r{depth}")
    initialise_backbone(model, weights, depth=depth, stem=stem, width=width)
    return model
