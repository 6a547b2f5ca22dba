"""The convolution building blocks shared by the backbones, the heads and the lightweight PSPNet.

One place decides padding, BatchNorm settings and layer names (`<name>_conv`, `<name>_bn`, `<name>_relu`,
the keras.applications scheme that ImageNet weight transfer matches by name).
"""

from __future__ import annotations

from keras import layers

BN_EPSILON = 1.001e-5  # keras.applications' value, kept so that transferred statistics behave the same
BN_MOMENTUM = 0.9  # faster-settling moving averages than Keras' 0.99: short CPU runs evaluate sensibly


def conv(
    x,
    filters: int,
    kernel: int,
    name: str,
    *,
    stride: int = 1,
    dilation: int = 1,
    use_bias: bool = True,
    kernel_initializer: str = "glorot_uniform",
):
    """Conv2D with symmetric zero padding when striding (PyTorch/Caffe geometry), "same" otherwise."""
    if stride > 1 and kernel > 1:
        x = layers.ZeroPadding2D(padding=(kernel - 1) // 2 * dilation, name=name + "_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        dilation_rate=dilation,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )(x)


def batch_norm(x, name: str, *, epsilon: float = BN_EPSILON):
    return layers.BatchNormalization(epsilon=epsilon, momentum=BN_MOMENTUM, name=name)(x)


def conv_bn(
    x,
    filters: int,
    kernel: int,
    name: str,
    *,
    stride: int = 1,
    dilation: int = 1,
    use_bias: bool = False,
    activation: str | None = "relu",
    leaky_slope: float = 0.2,
    kernel_initializer: str = "glorot_uniform",
    bn_epsilon: float = BN_EPSILON,
):
    """Conv (`<name>_conv`) + BatchNorm (`<name>_bn`) + optional activation (`<name>_relu` / `_leaky`).

    activation: "relu", "leaky" (LeakyReLU with `leaky_slope`) or None. use_bias: a bias before BatchNorm is
    redundant (BN's beta replaces it) but keras.applications' ResNets have one, so the backbone keeps it.
    bn_epsilon: BatchNorm's epsilon (PyTorch models, e.g. converted mmsegmentation weights, use 1e-5).
    """
    x = conv(
        x,
        filters,
        kernel,
        name + "_conv",
        stride=stride,
        dilation=dilation,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
    )
    x = batch_norm(x, name + "_bn", epsilon=bn_epsilon)
    if activation == "relu":
        return layers.Activation("relu", name=name + "_relu")(x)
    if activation == "leaky":
        return layers.LeakyReLU(leaky_slope, name=name + "_leaky")(x)
    if activation is not None:
        raise ValueError(f"activation must be 'relu', 'leaky' or None, got {activation!r}")
    return x
