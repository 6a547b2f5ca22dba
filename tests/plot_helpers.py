"""Pixel facts of the report plots for tests: the size each kind is drawn at, and colour counting."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bench.report.plots import (
    BARS_SIZE,
    CONFUSION_SIZE,
    CURVE_SIZE,
    DPI,
    GRID_CELL,
    GRID_TITLE,
    RANGES_SIZE,
    RELIABILITY_SIZE,
)


def expected_size(kind: str, rows: int = 1) -> tuple[int, int]:
    """Pixel (width, height) of a plot kind ('bars', 'confusion', 'curve', 'ranges', 'reliability', 'grid'
    with `rows` samples)."""
    sizes = {
        "bars": BARS_SIZE,
        "confusion": CONFUSION_SIZE,
        "curve": CURVE_SIZE,
        "ranges": RANGES_SIZE,
        "reliability": RELIABILITY_SIZE,
    }
    w, h = sizes[kind] if kind in sizes else (3 * GRID_CELL[0], rows * GRID_CELL[1] + GRID_TITLE)
    return round(w * DPI), round(h * DPI)


def rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def colour_mask(pixels: np.ndarray, hex_colour: str) -> np.ndarray:
    """Where `pixels` (H, W, 3) are exactly `#rrggbb`."""
    colour = tuple(int(hex_colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return (pixels == colour).all(axis=-1)
