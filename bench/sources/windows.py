"""Windows of a fixed input size slid over a frame, and the numpy resizes that bring a network's output
back to its window: shared by the sources whose network takes one input size (LiteRT, ONNX, OpenVINO).

Windows are placed as `models.inference_modes.slide_windows` places them (the last one flush with the
border; one window, padded by the caller, for a frame smaller than it). Logits of overlapping windows are
averaged; an arg-max has nothing to average, so each pixel takes the window whose centre is nearest (the
prediction with the most context). No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def slide(
    x: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    run: Callable[[np.ndarray, tuple[int, int]], np.ndarray],
    *,
    argmax: bool,
    channels: int,
) -> np.ndarray:
    """The output of the (H, W, ...) frame x from `run(part, window)` of each window (the part, cropped
    at the border, -> the output at `window` size): logits (H, W, channels) float32 averaged, or an arg-max
    map (H, W) uint8 from the nearest centre."""
    height, width = x.shape[:2]
    (ch, cw), (sh, sw) = window, stride
    rows, cols = window_starts(height, ch, sh), window_starts(width, cw, sw)
    if argmax:
        labels = np.empty((height, width), np.uint8)
        row_of, col_of = nearest_centre(height, rows, ch), nearest_centre(width, cols, cw)
    else:
        total = np.zeros((height, width, channels), np.float32)
        count = np.zeros((height, width, 1), np.float32)
    for i, y0 in enumerate(rows):
        for j, x0 in enumerate(cols):
            part = x[y0 : y0 + ch, x0 : x0 + cw]
            out = run(part, (ch, cw))[: part.shape[0], : part.shape[1]]
            if argmax:
                mine = np.ix_(np.flatnonzero(row_of == i), np.flatnonzero(col_of == j))
                labels[mine] = out[mine[0] - y0, mine[1] - x0]
            else:
                total[y0 : y0 + ch, x0 : x0 + cw] += out
                count[y0 : y0 + ch, x0 : x0 + cw] += 1.0
    return labels if argmax else total / count


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window starts over 0..length, the last flush with the end (one window for a smaller frame)."""
    from models.inference_modes import slide_windows

    return [start for start, _ in slide_windows(length, window, stride)]


def nearest_centre(length: int, starts: Sequence[int], window: int) -> np.ndarray:
    """For each position 0..length-1, the index of the window whose centre is nearest (first on a tie).

    Every window covers the positions it is chosen for: they lie between its centre and its neighbours'."""
    centres = np.array([s + (min(s + window, length) - s - 1) / 2 for s in starts], np.float64)[None, :]
    positions = np.arange(length, dtype=np.float64)[:, None]
    return np.argmin(np.abs(positions - centres), axis=1)


def resize_nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest resize of (h, w) or (h, w, C) to `size`, each output pixel the input pixel it falls in."""
    if values.shape[:2] == tuple(size):
        return values
    rows, cols = (
        np.minimum(((np.arange(target) + 0.5) * n / target).astype(int), n - 1)
        for n, target in zip(values.shape[:2], size, strict=True)
    )
    return values[np.ix_(rows, cols)]


def resize_bilinear(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (h, w, C) with half-pixel centres (as `tf.image.resize`), edges clamped."""
    if logits.shape[:2] == tuple(size):
        return logits
    for axis, target in enumerate(size):
        n = logits.shape[axis]
        where = np.clip((np.arange(target) + 0.5) * n / target - 0.5, 0, n - 1)
        low = np.floor(where).astype(int)
        high = np.minimum(low + 1, n - 1)
        weight = (where - low).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = target
        weight = weight.reshape(shape)
        logits = np.take(logits, low, axis=axis) * (1 - weight) + np.take(logits, high, axis=axis) * weight
    return logits
