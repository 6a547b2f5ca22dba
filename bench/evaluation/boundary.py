"""Boundary IoU per class on semantic maps (Cheng et al., CVPR 2021), exact, one band computation per map.

For a class c the boundary band of a mask M is M minus its erosion by d pixels (a 3x3 erosion repeated d
times, zero-padded so the image border counts as background), with d = round(ratio x image diagonal) and
ratio 0.005 as the authors use for Cityscapes (11 px at 1024x2048). Per class we sum |B(G_c) n B(P_c)| and
|B(G_c) u B(P_c)| over the split (pixels whose ground truth is void left out of both) and report their
ratio like IoU: NaN for a class with an empty union, the mean over the others.

Why one computation per map suffices: d iterations of a 3x3 erosion are one (2d+1)x(2d+1) square erosion,
so a pixel of label c lies in the band of c exactly when its (2d+1)-square window leaves the image or holds
another label. That test does not depend on c: `band_mask` answers it for every pixel at once, from the
label changes between neighbours and sliding-window ORs computed by doubling (O(HW log d) boolean work),
and a class's band is then `band & (labels == c)`. Counting is three `bincount`s over band pixels.
(detectron2's semantic Boundary IoU erodes the whole label map instead and uses label differences as class
ids, with d = 0.02 of the diagonal: not the authors' definition.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.common.ranges import Range
from data.errors import UserError
from data.labels import CLASS_NAMES, IGNORE_ID, NUM_CLASSES

DILATION_RATIO = 0.005
RATIO = Range(float, 0, 0.5, low_open=True)
"""Ratios the dilation can take: a band wider than half the diagonal already covers the whole image, and
the padded work arrays grow with the square of d (a ratio of 1e6 would ask for terabytes)."""
"""The Boundary IoU authors' d / image diagonal for Cityscapes."""


def band_width(shape: tuple[int, int], ratio: float = DILATION_RATIO) -> int:
    """d = round(ratio x diagonal) pixels (Python's rounding, as the authors' code), at least 1."""
    RATIO.check(ratio, "the Boundary IoU ratio (--boundary-ratio)")
    return max(1, int(round(ratio * math.hypot(*shape))))


def _any_window(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """OR over every window of `k` consecutive entries along `axis` (length shrinks by k - 1), by doubling."""
    a = np.moveaxis(a, axis, 0)
    span = 1
    while 2 * span <= k:
        a = a[:-span] | a[span:]  # a[i] = any of the span*2 entries from i
        span *= 2
    if span < k:  # two windows of `span` that overlap cover `k`
        a = a[: len(a) - (k - span)] | a[k - span :]
    return np.moveaxis(a, 0, axis)


def band_mask(labels: np.ndarray, d: int) -> np.ndarray:
    """True where a pixel's (2d+1)x(2d+1) window leaves the image or holds a label other than its own:
    the pixel is then in the boundary band of its own label's mask (for any label)."""
    h, w = labels.shape
    if d <= 0:
        return np.zeros((h, w), dtype=bool)
    # Row segment [x-d, x+d] of row y non-uniform or off the image: changes ch[y, x-d .. x+d-1] (padded).
    ch = np.ones((h, w - 1 + 2 * d), dtype=bool)
    np.not_equal(labels[:, 1:], labels[:, :-1], out=ch[:, d : d + w - 1])
    rows = np.ones((h + 2 * d, w), dtype=bool)  # padded with d rows off the image on each side
    rows[d : d + h] = _any_window(ch, 2 * d, axis=1)
    # The window is uniform iff its 2d+1 row segments are uniform and its centre column is: vertical changes
    # cv[y-d .. y+d-1, x] (padded) and row flags rows[y .. y+2d] (padded coordinates).
    cv = np.ones((h - 1 + 2 * d, w), dtype=bool)
    np.not_equal(labels[1:], labels[:-1], out=cv[d : d + h - 1])
    cv |= rows[:-1]
    out = _any_window(cv, 2 * d, axis=0)
    out |= rows[2 * d :]
    return out


@dataclass(frozen=True)
class BoundaryCounts:
    """Per-class pixel counts of one frame or a whole split (int64, train-ID order); they add exactly."""

    intersection: np.ndarray
    union: np.ndarray

    def __add__(self, other: BoundaryCounts) -> BoundaryCounts:
        return BoundaryCounts(self.intersection + other.intersection, self.union + other.union)


def boundary_counts(gt: np.ndarray, pred: np.ndarray, *, ratio: float = DILATION_RATIO) -> BoundaryCounts:
    """|B(G_c) n B(P_c)| and |B(G_c) u B(P_c)| per class of one frame, on non-void GT pixels.

    `gt` and `pred` are (H, W) train-ID maps (0..18, anything else no class; 255 in `gt` is void).
    """
    if gt.shape != pred.shape or gt.ndim != 2:
        raise UserError(
            f"boundary IoU needs a prediction of the ground truth's size: {pred.shape} vs {gt.shape}"
        )
    d = band_width(gt.shape, ratio)
    valid = gt != IGNORE_ID
    in_gt = band_mask(gt, d)
    in_gt &= valid
    in_pred = band_mask(pred, d)
    in_pred &= valid
    both = in_gt & in_pred
    both &= gt == pred

    def count(values: np.ndarray) -> np.ndarray:
        return np.bincount(values.ravel(), minlength=256)[:NUM_CLASSES].astype(np.int64)

    gt_band, pred_band, inter = count(gt[in_gt]), count(pred[in_pred]), count(gt[both])
    return BoundaryCounts(inter, gt_band + pred_band - inter)


def empty_counts() -> BoundaryCounts:
    return BoundaryCounts(np.zeros(NUM_CLASSES, np.int64), np.zeros(NUM_CLASSES, np.int64))


@dataclass
class BoundaryResult:
    """Boundary IoU of a split: per class (fractions, NaN for an empty union) and their mean."""

    counts: BoundaryCounts
    ratio: float = DILATION_RATIO
    n_images: int = 0
    seconds: float = 0.0
    class_iou: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        inter, union = self.counts.intersection, self.counts.union
        self.class_iou = {
            name: (float(inter[i]) / float(union[i]) if union[i] else float("nan"))
            for i, name in enumerate(CLASS_NAMES)
        }

    @property
    def miou(self) -> float:
        """Mean over classes with a non-empty union (NaN when there is none), like cityscapesScripts' mean."""
        valid = [v for v in self.class_iou.values() if not math.isnan(v)]
        return sum(valid) / len(valid) if valid else float("nan")

    def to_dict(self) -> dict[str, object]:
        """The JSON section (fractions; NaN kept, the writers turn it into null)."""
        return {
            "classScores": dict(self.class_iou),
            "averageScoreClasses": self.miou,
            "dilationRatio": self.ratio,
            "intersection": self.counts.intersection.tolist(),
            "union": self.counts.union.tolist(),
            "nImages": self.n_images,
        }

    def columns(self) -> dict[str, float]:
        """The results.csv columns (percent)."""
        return {"boundary_miou": self.miou * 100.0, "boundary_ratio": self.ratio}


def gt_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Ground-truth label IDs as train IDs (255 void), the maps the band is computed on."""
    from data.labels import to_train_ids

    return to_train_ids(label_ids)
