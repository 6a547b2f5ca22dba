"""Numeric precision of a model: float32, or bfloat16 compute with float32 weights (Keras mixed precision).

`bf16` is Keras' `mixed_bfloat16` policy: variables stay float32 (so a float32 checkpoint loads as it is and
BatchNorm folding works on float32 numbers), layers compute in bfloat16, and the builders' final resize is
float32 (models/heads.py `segmentation_model`), so logits and their arg-max stay float32. bfloat16 keeps
float32's exponent range, so no loss scaling is needed. It pays where the hardware multiplies bfloat16
natively: GPUs from Ampere on, CPUs with AVX512-BF16 or AMX; elsewhere it is emulated and slower.

A policy applies to the layers created while it is set: build the model inside `precision_scope`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from data.errors import UserError

PRECISIONS = ("fp32", "bf16")
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}
DEFAULT_PRECISION = "fp32"
"""What predict, run and submit use unless told otherwise. bf16 met its targets on an AVX512-BF16 CPU
(PSPNet-R50-D8 2.09x faster, 99.82% arg-max agreement, mIoU within 0.02 points) but stays opt-in: rows must
not depend on the hardware, published references are fp32, and bf16 is emulated (slower) without native
bfloat16 arithmetic. The README has the figures and commands."""


def check_precision(precision: str) -> str:
    """`precision` if it is one we know, else a UserError naming the choices."""
    if precision not in POLICIES:
        raise UserError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Build models under `precision`'s Keras dtype policy; the previous global policy is restored after."""
    import keras

    policy = POLICIES[check_precision(precision)]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
