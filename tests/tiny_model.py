"""A plugin model for the tests (`"tests.tiny_model:tiny"`): tiny, size-agnostic, with an optional aux head.

It proves the registry's plugin path end to end and keeps training tests to seconds. Only stride-1
convolutions (dilated for context), so any input size gives logits at that size.
"""

from __future__ import annotations

import keras


def tiny(
    num_classes: int = 19, input_shape: tuple = (None, None, 3), *, aux_head: bool = False, width: int = 16
) -> keras.Model:
    """Three 3x3 conv + BN + ReLU blocks (dilation 1, 2, 4) and a 1x1 classifier; aux head on block 2.

    BatchNorm momentum 0.9 (PyTorch's 0.1): the moving statistics settle within a few dozen steps.
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    features = []
    for i, dilation in enumerate((1, 2, 4)):
        x = keras.layers.Conv2D(
            width, 3, padding="same", dilation_rate=dilation, use_bias=False, name=f"block{i}_conv"
        )(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        features.append(x)
    logits = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
    outputs = {"logits": logits}
    if aux_head:
        outputs["aux"] = keras.layers.Conv2D(num_classes, 1, name="aux_classifier")(features[1])
    return keras.Model(inputs, outputs if aux_head else logits, name="tiny")
