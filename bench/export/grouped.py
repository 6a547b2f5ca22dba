"""Grouped convolutions as split + convolution per group + concat, in a clone of the model made for export.

Why: Keras 3's TensorFlow backend runs a grouped convolution (`Conv2D(groups=g)`, 1 < g < channels) inside
a nested `tf.function(jit_compile=True)` (keras/src/backend/tensorflow/nn.py `conv`: "grouped convolutions
are broken on CPU without XLA"). The traced graph then holds a `StatefulPartitionedCall` to that function,
which tf2onnx leaves in the ONNX graph unconverted, and ONNX Runtime refuses the file ("No Op registered
for StatefulPartitionedCall"). ESPNetv2's grouped 1x1 and 3x3 convolutions hit it; depthwise ones
(`DepthwiseConv2D`) do not.

The rewrite is exact: output channel o of a grouped convolution reads input channels of group
o // (filters / g) only, and the kernel's last axis lists the groups in order; so splitting input and kernel
into g parts, convolving each part (an ordinary convolution: no XLA) and concatenating the outputs computes
the same sums. A dilated grouped convolution instead gets the dense block-diagonal kernel (g times the
multiplies, the extra ones by exact zeros): tf2onnx's dilation rewrite (SpaceToBatchND around each conv)
gets split dilated convolutions wrong on dynamic shapes (11% agreement on a 17x23 test input).
The clone shares every other layer (and its weights) with the source model.
"""

from __future__ import annotations


def block_diagonal(kernel, groups: int):
    """A grouped kernel (kh, kw, C/g, F) as the dense (kh, kw, C, F) one: group i's block at input channels
    i*C/g.. and output channels i*F/g.., zeros elsewhere (the same sums, plus exact zeros)."""
    from keras import ops

    cin, filters = kernel.shape[-2], kernel.shape[-1]
    per = filters // groups
    blocks = [
        ops.pad(
            kernel[..., i * per : (i + 1) * per],
            [[0, 0], [0, 0], [i * cin, (groups - 1 - i) * cin], [0, 0]],
        )
        for i in range(groups)
    ]
    return ops.concatenate(blocks, axis=-1)


def _split(x, groups: int, axis: int):
    """`x` in `groups` equal parts along `axis`, the sizes written out (TensorFlow's SplitV, ONNX Split with a
    `split` input): ONNX Runtime's common-subexpression elimination merges two Split nodes of one tensor
    that differ only in their number of outputs (ESPNetv2 splits one feature map in 4 and in 8 groups), and
    the merged one feeds convolutions the wrong channels."""
    from keras import ops

    size = x.shape[axis] // groups
    return ops.split(x, [size * i for i in range(1, groups)], axis=axis)


def _split_conv_class():
    import keras
    from keras import ops

    class SplitGroupConv2D(keras.layers.Conv2D):
        """`Conv2D(groups=g)` computed as g ordinary convolutions on channel slices, concatenated."""

        def convolution_op(self, inputs, kernel):
            axis = -1 if self.data_format == "channels_last" else 1
            if max(self.dilation_rate) > 1:
                return super().convolution_op(inputs, block_diagonal(kernel, self.groups))
            parts = zip(_split(inputs, self.groups, axis), _split(kernel, self.groups, -1), strict=True)
            return ops.concatenate(
                [
                    ops.conv(
                        x,
                        k,
                        strides=list(self.strides),
                        padding=self.padding,
                        dilation_rate=self.dilation_rate,
                        data_format=self.data_format,
                    )
                    for x, k in parts
                ],
                axis=axis,
            )

    return SplitGroupConv2D


def is_grouped(layer) -> bool:
    """A Conv2D that Keras runs through XLA on TensorFlow: 1 < groups (a depthwise layer is its own class)."""
    import keras

    return isinstance(layer, keras.layers.Conv2D) and getattr(layer, "groups", 1) > 1


def count_grouped(model) -> int:
    """Grouped Conv2D layers of `model`, nested models included."""
    return sum(1 for layer in model._flatten_layers(include_self=False) if is_grouped(layer))


def split_groups(model):
    """`model` itself when it has no grouped Conv2D, else a clone in which each one is a `SplitGroupConv2D`
    holding the same weights (every other layer shared, not copied)."""
    import keras

    if not count_grouped(model):
        return model
    split_conv = _split_conv_class()
    replaced: list[tuple] = []

    def clone(layer):
        if not is_grouped(layer):
            return layer
        new = split_conv.from_config(layer.get_config())
        replaced.append((layer, new))
        return new

    clone_of = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for old, new in replaced:
        new.set_weights(old.get_weights())
    left = [
        x.name
        for x in clone_of._flatten_layers(include_self=False)
        if is_grouped(x) and not isinstance(x, split_conv)
    ]
    if left or any(not new.built for _, new in replaced):
        raise RuntimeError(f"grouped convolutions left in the export clone: {left}")  # a nested model missed
    return clone_of
