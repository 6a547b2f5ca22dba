"""Keras pieces of ESPNet and ESPNetv2 in PyTorch's geometry, shared by `models/espnet.py` and `espnetv2.py`.

The authors' networks are PyTorch, so the pieces reproduce what PyTorch computes where Keras differs:
symmetric zero padding of `(k - 1) // 2 * d` on every side, a dilated convolution that strides, average
pooling that counts the padded zeros, per-channel PReLU, adaptive average pooling to any (even non-dividing)
size with PyTorch's bins, channel shuffle, and PyTorch's bilinear `align_corners=True` resize.

Every layer that holds weights is named after the authors' module that holds them (`encoder.level2.0.c1.conv`,
`base_net.level3.0.proj_1x1.bn`): a converted state dict is matched by name, one rule for both families
(bench/sources/convert/torch_layers.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from models.layers import PACKAGE, resize_like

PRELU_INIT = 0.25  # torch.nn.PReLU's initial slope, so a model trained here starts as the authors' do


def conv(
    x,
    filters: int,
    kernel: int,
    name: str,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = False,
):
    """nn.Conv2d(padding=(k - 1) // 2 * d, bias=False) of the authors' code; depthwise when groups == C.

    Keras forbids a stride with a dilation: then the stride-1 result is subsampled, which samples the same
    positions as PyTorch's strided convolution (output size ceil(H / 2) both ways).
    """
    channels = x.shape[-1]
    pad = (kernel - 1) // 2 * dilation
    depthwise = groups > 1 and groups == channels == filters
    strided_here = stride if dilation == 1 else 1
    if strided_here > 1 and pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}.pad")(x)
    padding = "valid" if strided_here > 1 or not pad else "same"
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel, strides=strided_here, padding=padding, dilation_rate=dilation, use_bias=bias, name=name
        )(x)
    else:
        x = layers.Conv2D(
            filters,
            kernel,
            strides=strided_here,
            padding=padding,
            dilation_rate=dilation,
            groups=groups,
            use_bias=bias,
            name=name,
        )(x)
    if stride > 1 and dilation > 1:
        x = Subsample(stride, name=f"{name}.stride")(x)
    return x


def batch_norm(x, name: str, epsilon: float):
    return layers.BatchNormalization(epsilon=epsilon, momentum=0.9, name=name)(x)


def prelu(x, name: str):
    """nn.PReLU(C): one learned slope per channel."""
    return layers.PReLU(
        alpha_initializer=keras.initializers.Constant(PRELU_INIT), shared_axes=[1, 2], name=name
    )(x)


def bn_prelu(x, bn_name: str, act_name: str, epsilon: float):
    """BatchNorm then PReLU (the authors' `BR`)."""
    return prelu(batch_norm(x, bn_name, epsilon), act_name)


def avg_pool_counting_padding(x, name: str):
    """nn.AvgPool2d(3, stride=2, padding=1): PyTorch divides by 9 at the border too (count_include_pad)."""
    x = layers.ZeroPadding2D(1, name=f"{name}.pad")(x)
    return layers.AveragePooling2D(3, strides=2, padding="valid", name=name)(x)


def resize_align_corners(x, reference, name: str):
    """F.interpolate(..., mode="bilinear", align_corners=True) to `reference`'s size."""
    return resize_like(x, reference, name=name, align_corners=True)


def _scaled(length, scale: float, min_size: int):
    """max(ceil(length * scale), min_size), in float64 as the authors' Python computes it."""
    value = tf.math.ceil(tf.cast(length, tf.float64) * tf.constant(scale, tf.float64))
    return tf.maximum(tf.cast(value, tf.int32), min_size)


def _adaptive_pool_axis(x, bins, axis: int):
    """PyTorch's adaptive average pooling of `x` along `axis` to `bins` (a tensor): bin i averages positions
    floor(i*L/b) <= p < ceil((i+1)*L/b). Gathers the few positions of each bin (no (b, L) matrix)."""
    length = tf.shape(x)[axis]
    i = tf.range(bins)
    start = (i * length) // bins
    end = ((i + 1) * length + bins - 1) // bins
    width = tf.reduce_max(end - start)
    offsets = start[:, None] + tf.range(width)[None, :]  # (bins, width)
    inside = offsets < end[:, None]
    index = tf.minimum(offsets, length - 1)
    weight = tf.cast(inside, x.dtype) / tf.cast(end - start, x.dtype)[:, None]
    gathered = tf.gather(x, tf.reshape(index, [-1]), axis=axis)  # (..., bins * width, ...)
    shape = tf.concat([tf.shape(x)[:axis], [bins, width], tf.shape(x)[axis + 1 :]], 0)
    gathered = tf.reshape(gathered, shape)
    weight_shape = [1] * axis + [-1, width] + [1] * (3 - axis)
    return tf.reduce_sum(gathered * tf.reshape(weight, weight_shape), axis=axis + 1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaptivePool(keras.layers.Layer):
    """F.adaptive_avg_pool2d to a size given at run time: `scale` of the input's (min `min_size`,
    ceil'd: ESPNetv2's pyramid), or the size of a second input (`call([x, reference])`)."""

    def __init__(self, scale: float | None = None, min_size: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.scale = None if scale is None else float(scale)
        self.min_size = int(min_size)

    def call(self, inputs):
        if self.scale is None:
            x, reference = inputs
            rows, cols = tf.shape(reference)[1], tf.shape(reference)[2]
        else:
            x = inputs
            rows = _scaled(tf.shape(x)[1], self.scale, self.min_size)
            cols = _scaled(tf.shape(x)[2], self.scale, self.min_size)
        return _adaptive_pool_axis(_adaptive_pool_axis(x, rows, 1), cols, 2)

    def compute_output_shape(self, input_shape):
        if self.scale is None:
            x, reference = input_shape
            return (x[0], reference[1], reference[2], x[3])
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "min_size": self.min_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledResize(keras.layers.Layer):
    """Bilinear `align_corners=True` resize to max(ceil(H * scale), min_size) x max(ceil(W * scale), ...)."""

    def __init__(self, scale: float, min_size: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.min_size = int(min_size)

    def call(self, x):
        size = tf.stack(
            [
                _scaled(tf.shape(x)[1], self.scale, self.min_size),
                _scaled(tf.shape(x)[2], self.scale, self.min_size),
            ]
        )
        out = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=True, half_pixel_centers=False)
        return ops.cast(out, x.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "min_size": self.min_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelShuffle(keras.layers.Layer):
    """ShuffleNet's channel shuffle (the authors' `Shuffle`): channel g * per_group + j -> j * groups + g."""

    def __init__(self, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, x):
        channels = x.shape[-1]
        if channels % self.groups:
            raise ValueError(f"channel shuffle of {channels} channels into {self.groups} groups")
        order = [
            g * (channels // self.groups) + j
            for j in range(channels // self.groups)
            for g in range(self.groups)
        ]
        return ops.take(x, order, axis=-1)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Subsample(keras.layers.Layer):
    """Every `stride`-th row and column, starting at the first (what a strided convolution samples)."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, x):
        return x[:, :: self.stride, :: self.stride, :]

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else -(-n // self.stride)

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PadToMultiple(keras.layers.Layer):
    """Zero padding at the bottom and right up to multiples of `multiple` (none when they already are)."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        return tf.pad(x, [[0, 0], [0, -height % self.multiple], [0, -width % self.multiple], [0, 0]])

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else -(-n // self.multiple) * self.multiple

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CropLike(keras.layers.Layer):
    """The top-left part of the first input of the second input's height and width (undoes PadToMultiple)."""

    def call(self, inputs):
        x, reference = inputs
        return x[:, : tf.shape(reference)[1], : tf.shape(reference)[2], :]

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainIdLogits(keras.layers.Layer):
    """The first `count` channels: the train IDs' logits, without the authors' extra "background" channel.

    ESPNet and ESPNetv2 were trained with a 20th class on the ignore pixels. cityscapesScripts scores a
    prediction of it on a valid pixel as a miss, so the honest arg-max is over the 19 train IDs alone.
    """

    def __init__(self, count: int, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, x):
        return x[..., : self.count]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.count)

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def segmentation_outputs(inputs, logits, num_classes: int, *, aux_head: bool, name: str) -> keras.Model:
    """The registry's contract: logits (B, H, W, num_classes) float32; {"logits"} with `aux_head`.

    The layer named "logits" keeps the first `num_classes` channels; its input is the network's own output
    (all channels, the background one included), which parity checks compare with the authors'.
    """
    logits = TrainIdLogits(num_classes, name="logits", dtype="float32")(logits)
    return keras.Model(inputs, {"logits": logits} if aux_head else logits, name=name)
