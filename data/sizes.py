"""Image sizes: `HEIGHTxWIDTH` on the command line (or one number for a square), parsed in one place, and
the range of training's random resize (TensorFlow-free, so recipes can name it without loading TF)."""

from __future__ import annotations

import argparse

from data.pixels import MAX_PIXELS, MAX_SIDE

SCALE_RANGE = (0.5, 2.0)
"""Training's random resize of each frame (PSPNet's and mmsegmentation's Cityscapes recipes)."""


def parse_dims(text: str, count: int, example: str) -> tuple[int, ...]:
    """`8x256x512` -> (8, 256, 512): exactly `count` positive integers joined by 'x'; ValueError otherwise."""
    try:
        values = tuple(int(p) for p in str(text).lower().split("x"))
    except ValueError:
        values = ()
    if len(values) != count or min(values) < 1:
        raise ValueError(f"'{text}' is not {'x'.join('N' * count)} with positive numbers, e.g. {example}")
    return values


def parse_size(text: str) -> tuple[int, int]:
    """`512x1024` (height x width) or `512` (square) -> (512, 1024); ValueError naming the form otherwise."""
    text = str(text)
    dims = text if "x" in text.lower() else f"{text}x{text}"
    try:
        height, width = parse_dims(dims, 2, "512x1024")
    except ValueError:
        raise ValueError(f"'{text}' is not a size: write HEIGHTxWIDTH, e.g. 512x1024") from None
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ValueError(
            f"'{text}' is {(height * width) >> 20:,} Mpx, more than the pixel budget of "
            f"{MAX_PIXELS >> 20} Mpx (sides <= {MAX_SIDE}): a Cityscapes frame is 1024x2048"
        )
    return height, width


def size_argument(text: str) -> tuple[int, int]:
    """`parse_size` as an argparse type (its message becomes the usage error)."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
