"""Small argparse value types shared by the train, predict and perf commands."""

from __future__ import annotations

import argparse

from data.sizes import size_argument as size

__all__ = ["scales", "size"]


def scales(text: str) -> tuple[float, ...]:
    """`0.5,0.75,1.0` -> (0.5, 0.75, 1.0); every scale positive."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of positive scales, e.g. 0.75,1.0,1.25")
    return values
