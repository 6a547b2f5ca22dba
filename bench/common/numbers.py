"""NaN-tolerant number helpers shared by evaluation and reporting (missing scores are NaN, JSON null).

A score is missing when a class is absent from GT and predictions (NaN) or a CSV cell is empty; every
table, plot and JSON file reads and writes missing values through these two functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def to_float(value: Any) -> float:
    """A number from a score, CSV cell or JSON value; NaN for None or ''. Anything else unparseable raises
    ValueError, so a malformed cell is reported, never shown as missing."""
    if value is None or value == "":
        return math.nan
    return float(value)


def nan_to_none(value: Any) -> Any:
    """A copy with every NaN (numpy scalars included) turned into None, for strict JSON (NaN -> null)."""
    if isinstance(value, Mapping):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 frame`, `3 frames`: a number with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def faster(ratio: float) -> str:
    """`2.7x faster` for a ratio (reference time / ours) above 1, `10x slower` below: never '0.1x faster'."""
    if math.isinf(ratio) or ratio >= 1:
        return f"{ratio:.1f}x faster"
    return f"{1 / ratio:.1f}x slower" if ratio > 0 else "infinitely slower"
