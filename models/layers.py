"""Custom Keras layers that work on any input size, including unknown (None) sizes in a traced function.

Keras 3 has no adaptive average pooling, and `keras.ops.image.resize` wants a static output size, so both
are written here as small serialisable layers. They are registered with Keras, so a `.keras` checkpoint
of any registry model loads once this module is imported (`import models.layers`).
The resize uses TensorFlow directly: the project runs Keras on the TensorFlow backend, and only
`tf.image.resize` accepts a size that is itself a tensor.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

PACKAGE = "cityscapes_bench"


def adaptive_pool_matrix(length, bins: int, dtype="float32"):
    """The (bins, length) averaging matrix of PyTorch's AdaptiveAvgPool1d.

    Bin i averages positions floor(i*L/b) <= p < ceil((i+1)*L/b); bins may overlap when L is not a multiple
    of b, and L may be smaller than b (then some positions feed several bins). `length` may be a tensor.
    """
    length = ops.cast(length, "int32")
    i = ops.arange(bins, dtype="int32")
    start = (i * length) // bins
    end = ((i + 1) * length + bins - 1) // bins
    pos = ops.arange(length, dtype="int32")
    inside = ops.logical_and(pos[None, :] >= start[:, None], pos[None, :] < end[:, None])
    weights = ops.cast(inside, dtype)
    return weights / ops.cast(end - start, dtype)[:, None]


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaptiveAveragePooling(keras.layers.Layer):
    """Average pooling to a fixed `bins x bins` grid for any input size (PyTorch AdaptiveAvgPool2d).

    Computed as two small matrix products with per-bin averaging matrices, so it needs no static shape and
    costs bins*H*W*C multiply-adds, negligible next to the convolutions around it.
    """

    def __init__(self, bins: int, **kwargs):
        super().__init__(**kwargs)
        if int(bins) < 1:
            raise ValueError(f"AdaptiveAveragePooling needs bins >= 1, got {bins}")
        self.bins = int(bins)

    def call(self, x):
        shape = ops.shape(x)
        if self.bins == 1:
            return ops.mean(x, axis=(1, 2), keepdims=True)
        rows = adaptive_pool_matrix(shape[1], self.bins, x.dtype)
        cols = adaptive_pool_matrix(shape[2], self.bins, x.dtype)
        x = ops.einsum("ih,bhwc->biwc", rows, x)
        return ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins, self.bins, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeLike(keras.layers.Layer):
    """Bilinear resize of the first input to the spatial size of the second.

    `call([x, reference])`; the size is read at run time, so it works for None sizes. Half-pixel centres
    by default (Keras' "bilinear", PyTorch's align_corners=False, mmsegmentation); `align_corners=True`
    maps corner pixel centres onto each other, as the Caffe PSPNet and semseg do. A sub-pixel difference
    that training absorbs, but converted weights need the one they were trained with.
    """

    def __init__(self, align_corners: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.align_corners = bool(align_corners)

    def call(self, inputs):
        x, reference = inputs
        size = ops.shape(reference)[1:3]
        if isinstance(size[0], int) and isinstance(size[1], int) and tuple(x.shape[1:3]) == tuple(size):
            return x
        size = tf.stack([size[0], size[1]])
        if self.align_corners:
            out = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=True, half_pixel_centers=False)
        else:
            out = tf.image.resize(x, size, method="bilinear")
        return ops.cast(out, x.dtype)

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])

    def get_config(self):
        return {**super().get_config(), "align_corners": self.align_corners}


def resize_like(x, reference, name: str, *, align_corners: bool = False, **kwargs):
    """Functional-API helper: `x` resized bilinearly to `reference`'s height and width."""
    return ResizeLike(align_corners=align_corners, name=name, **kwargs)([x, reference])
