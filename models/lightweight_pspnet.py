"""The seed document's lightweight "PSPNet", kept recognisable, with its bugs fixed.

    image -> 3 residual blocks, each: 1x1 conv f1 + BN + LeakyReLU(0.2), 3x3 conv f2 dilation 2 + BN +
             LeakyReLU(0.2), 1x1 conv f3 + BN, plus a 3x3 conv f3 + BN skip, added, ReLU;
             filters (32, 32, 64), (64, 64, 128), (128, 128, 256); no striding (full resolution)
          -> pyramid: adaptive average pooling to 1 (global), 2, 4, 8 bins, 1x1 conv to 64 each,
             bilinear upsampling, concatenated with the features
          -> final 3x3 conv to `num_classes` logits

Deviations from the seed document, and why:
1. Any input size. The document hard-coded 256x256 (`UpSampling2D(size=256)` after global pooling and
   windows that assume 256); here every upsampling resizes to the feature map's actual size at run time.
2. Bins instead of pooling windows. The document used `AveragePooling2D(pool_size=2/4/8)`, i.e. windows of
   2, 4, 8 pixels (128, 64, 32 bins on a 256 input), not the 2x2, 4x4, 8x8 grids PSPNet pools to; here
   adaptive average pooling to 2, 4, 8 bins (global = 1 bin).
3. Class logits instead of a 3-channel sigmoid image. Its final conv predicted 3 channels with a
   sigmoid (a colour image, regressed) followed by Flatten; here the final conv emits `num_classes` logits
   at input resolution for a softmax cross-entropy, and there is no Flatten (it tied the model to one size).
4. The final conv's BatchNorm is dropped: a BN on logits (followed by the sigmoid) only rescales
   them and adds nothing to a classifier.
5. The document has no auxiliary head; with `aux_head=True` the output is {"logits": ...} alone, as the
   registry's contract asks.
Kept as in the document: LeakyReLU 0.2 inside blocks, ReLU after the addition, no BN/activation after the
pyramid's 1x1 convs, he_normal initialisation, full-resolution features (expensive: 256 channels at
input resolution; it is "lightweight" in parameters, not in FLOPs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from models.registry import register

if TYPE_CHECKING:
    import keras

FULL_FILTERS = ((32, 32, 64), (64, 64, 128), (128, 128, 256))

PRESETS = {
    # the seed document's network keeps full resolution (94 GFLOP per 256x256 image); a quarter of its filters
    # makes it trainable on a CPU (about 1/16 of that)
    "cpu": {"filters": ((8, 8, 16), (16, 16, 32), (32, 32, 64)), "branch_channels": 16},
    "tiny": {"filters": ((4, 4, 8), (8, 8, 16), (8, 8, 16)), "branch_channels": 8},
}


def residual_block(x, filters: Sequence[int], name: str, *, dilation: int = 2, alpha: float = 0.2):
    """The seed document's residual block: 1x1, dilated 3x3, 1x1, plus a 3x3 skip conv."""
    from keras import layers

    from models.blocks import conv_bn

    f1, f2, f3 = filters

    def conv_bn_(y, f, k, suffix, d=1, activation=None):
        return conv_bn(
            y,
            f,
            k,
            f"{name}_{suffix}",
            dilation=d,
            use_bias=True,
            activation=activation,
            leaky_slope=alpha,
            kernel_initializer="he_normal",
        )

    skip = conv_bn_(x, f3, 3, "skip")
    x = conv_bn_(x, f1, 1, "a", activation="leaky")
    x = conv_bn_(x, f2, 3, "b", dilation, activation="leaky")
    x = conv_bn_(x, f3, 1, "c")
    x = layers.Add(name=f"{name}_add")([x, skip])
    return layers.ReLU(name=f"{name}_relu")(x)


@register("pspnet-seed", presets=PRESETS)
def build(
    num_classes: int = 19,
    input_shape=(None, None, 3),
    *,
    aux_head: bool = False,
    filters: Sequence[Sequence[int]] = FULL_FILTERS,
    bins: Sequence[int] = (1, 2, 4, 8),
    branch_channels: int = 64,
    dilation: int = 2,
    alpha: float = 0.2,
) -> keras.Model:
    """The seed document's lightweight PSPNet (3 residual blocks, pyramid 1/2/4/8), bugs fixed.

    filters: (f1, f2, f3) per residual block; bins: pyramid grid sizes; branch_channels: 1x1 conv
    channels per pyramid branch; dilation: of the blocks' 3x3 convs; alpha: LeakyReLU slope.
    aux_head is accepted for the registry contract; the seed has no auxiliary head.
    """
    import keras  # here, not at the top: listing the registry must not import TensorFlow
    from keras import layers

    from models.heads import segmentation_model
    from models.layers import AdaptiveAveragePooling, resize_like

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for i, block_filters in enumerate(filters):
        x = residual_block(x, block_filters, f"block{i + 1}", dilation=dilation, alpha=alpha)
    branches = [x]
    for b in bins:
        y = AdaptiveAveragePooling(b, name=f"pyramid_pool{b}")(x)
        y = layers.Conv2D(branch_channels, 1, kernel_initializer="he_normal", name=f"pyramid_bin{b}")(y)
        branches.append(resize_like(y, x, name=f"pyramid_up{b}"))
    x = layers.Concatenate(name="pyramid_concat")(branches)
    logits = layers.Conv2D(num_classes, 3, padding="same", name="final_conv")(x)
    model = segmentation_model(inputs, logits, name="lightweight_pspnet")
    if aux_head:
        return keras.Model(inputs, {"logits": model.outputs[0]}, name="lightweight_pspnet")
    return model
