"""Test helpers about built Keras models."""

from __future__ import annotations


def model_precision(model) -> str:
    """The precision a built model computes in: "bf16" when any layer computes in bfloat16, else "fp32"."""
    bf16 = any(getattr(layer, "compute_dtype", "float32") == "bfloat16" for layer in model.layers)
    return "bf16" if bf16 else "fp32"
