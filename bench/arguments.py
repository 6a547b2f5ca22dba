"""Small argparse value types shared by the train, predict and perf commands."""

from __future__ import annotations

import argparse


def size(text: str) -> tuple[int, int]:
    """`512x1024` (height x width) or `512` (square) -> (512, 1024)."""
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size: write HEIGHTxWIDTH, e.g. 512x1024")
    return values


def scales(text: str) -> tuple[float, ...]:
    """`0.5,0.75,1.0` -> (0.5, 0.75, 1.0); every scale positive."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of positive scales, e.g. 0.75,1.0,1.25")
    return values
