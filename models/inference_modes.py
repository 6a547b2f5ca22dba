"""Inference modes of a segmentation network: whole image, sliding window, multi-scale (+ flip).

As mmsegmentation's segmentor holds them: the network maps a normalised frame to logits, and a mode decides
which crops and scales it sees and how their logits are averaged back at full resolution. No I/O here, and
no TensorFlow import at module level, so the command line can offer the modes without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.precision import DEFAULT_PRECISION, check_precision

MODES = ("whole", "slide", "multiscale")
DEFAULT_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # PSPNet's multi-scale test
DEFAULT_CROP = (713, 713)  # PSPNet's sliding window on Cityscapes
DEFAULT_OVERLAP = 1 / 3  # windows overlap by a third: stride = 2/3 of the crop
MAX_SCALE = 8.0  # a 1024x2048 frame at 8x is 8192x16384: past that a scale is a typo, not a protocol


@dataclass(frozen=True)
class InferenceSettings:
    """How every command that predicts runs a model: the mode and its crops, scales and flip, the numeric
    precision and whether BatchNorm is folded. Checked when made: a bad value fails before any work."""

    mode: str = "whole"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    crop: tuple[int, int] | None = None  # slide window (and multiscale windows when given); None: 713x713
    stride: tuple[int, int] | None = None  # None: 2/3 of the crop
    precision: str = DEFAULT_PRECISION
    fold_bn: bool = True
    batch: int = 1  # frames of one size per forward pass (whole mode; the loop's `--batch`)

    def __post_init__(self) -> None:
        from data.errors import UserError

        scales = tuple(float(s) for s in self.scales)
        object.__setattr__(self, "scales", scales)
        for name in ("crop", "stride"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, (int(value[0]), int(value[1])))
        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode}: choose one of {', '.join(MODES)}")
        if not scales or not all(0 < s <= MAX_SCALE for s in scales):  # NaN fails both comparisons
            raise UserError(f"--scales {scales}: give scales between 0 and {MAX_SCALE:g}, e.g. 0.75,1.0,1.25")
        for name, value in (("--crop", self.crop), ("--stride", self.stride)):
            if value is not None and min(value) < 1:
                raise UserError(f"{name} {value} must be positive, e.g. 713x713")
        crop = self.crop or DEFAULT_CROP
        if self.stride is not None and (self.stride[0] > crop[0] or self.stride[1] > crop[1]):
            raise UserError(
                f"--stride {self.stride[0]}x{self.stride[1]} is larger than the crop {crop[0]}x{crop[1]}: "
                f"the pixels between two windows would get no logits (and become class 0); give a stride "
                f"of at most the crop, e.g. {max(1, crop[0] * 2 // 3)}x{max(1, crop[1] * 2 // 3)}"
            )
        check_precision(self.precision)
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise UserError(f"--batch {self.batch}: give a whole number of frames, 1 or more")
        if self.batch > 1 and (self.mode != "whole" or self.flip):
            raise UserError(f"--batch {self.batch} applies to --mode whole without --flip (use --batch 1)")

    def mode_options(self) -> dict[str, Any]:
        """The keyword arguments of `frame_logits` (and the mode fields of the prediction figures)."""
        return {
            "mode": self.mode,
            "scales": self.scales,
            "flip": self.flip,
            "crop": self.crop,
            "stride": self.stride,
        }


DEFAULT_SETTINGS = InferenceSettings()  # whole frame, fp32, BatchNorm folded: `bench predict`'s defaults


def scales_for(mode: str, scales: Sequence[float] | None) -> tuple[float, ...]:
    """The scales a mode runs at: the given ones (multiscale only), PSPNet's six by default, else 1.0."""
    if scales is not None and mode != "multiscale":
        from data.errors import UserError

        raise UserError("--scales applies to --mode multiscale only")
    return tuple(scales) if scales else (DEFAULT_SCALES if mode == "multiscale" else (1.0,))


def slide_windows(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) windows covering 0..length; the last one flush with the end, all clipped to length."""
    if length <= window:
        return [(0, length)]
    count = math.ceil((length - window) / stride) + 1
    starts = [min(i * stride, length - window) for i in range(count)]
    return [(s, s + window) for s in starts]


def slide_logits(forward: Callable, image, crop: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Logits (H, W, C) of a (1, H, W, 3) image from overlapping windows, averaged where they overlap."""
    height, width = int(image.shape[1]), int(image.shape[2])
    total, count = None, np.zeros((height, width, 1), np.float32)
    for y0, y1 in slide_windows(height, crop[0], stride[0]):
        for x0, x1 in slide_windows(width, crop[1], stride[1]):
            logits = np.asarray(forward(image[:, y0:y1, x0:x1, :]))[0]
            if total is None:
                total = np.zeros((height, width, logits.shape[-1]), np.float32)
            total[y0:y1, x0:x1] += logits
            count[y0:y1, x0:x1] += 1.0
    return total / count


def slides(mode: str, crop: tuple[int, int] | None) -> bool:
    """Whether a mode slides windows over the frame (slide; multiscale when given a crop)."""
    return mode == "slide" or (mode == "multiscale" and crop is not None)


def frame_logits(
    forward: Callable,
    image,
    *,
    mode: str = "whole",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crop: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
) -> np.ndarray:
    """Averaged logits (H, W, C) of one normalised frame (1, H, W, 3) under the chosen mode."""
    import tensorflow as tf

    height, width = int(image.shape[1]), int(image.shape[2])
    sliding = slides(mode, crop)
    crop = crop or DEFAULT_CROP
    stride = stride or tuple(max(1, math.ceil(c * (1 - DEFAULT_OVERLAP))) for c in crop)
    run_scales = scales if mode == "multiscale" else (1.0,)

    def predict_one(x) -> np.ndarray:
        if sliding:
            return slide_logits(forward, x, crop, stride)
        return np.asarray(forward(x))[0]

    total = None
    for scale in run_scales:
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = image if target == (height, width) else tf.image.resize(image, target, method="bilinear")
        for mirrored in (False, True) if flip else (False,):
            x = tf.reverse(scaled, [2]) if mirrored else scaled
            logits = predict_one(x)
            if mirrored:
                logits = logits[:, ::-1]
            if target != (height, width):
                logits = tf.image.resize(logits[None], (height, width), method="bilinear")[0].numpy()
            total = logits if total is None else total + logits
    return total / (len(run_scales) * (2 if flip else 1))
