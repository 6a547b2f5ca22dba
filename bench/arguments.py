"""Small argparse value types shared by the train, predict and perf commands."""

from __future__ import annotations

import argparse

from data.sizes import size_argument as size

__all__ = ["MAX_SCALE", "scales", "size"]


MAX_SCALE = 8.0  # a 1024x2048 frame at 8x is 8192x16384: past that a scale is a typo, not a protocol


def scales(text: str) -> tuple[float, ...]:
    """`0.5,0.75,1.0` -> (0.5, 0.75, 1.0); every scale finite, above 0 and at most `MAX_SCALE`."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    # written so that NaN fails too (every comparison with NaN is false)
    if not values or not all(0 < v <= MAX_SCALE for v in values):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of scales above 0 and at most {MAX_SCALE:g}, e.g. 0.75,1.0,1.25"
        )
    return values
