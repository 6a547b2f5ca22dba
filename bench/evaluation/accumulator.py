"""Running totals of an evaluation: add one image's statistics at a time, read the scores at any point.

The one place where per-image `ImageStats` become an `EvaluationResult`, whether the images come from PNG
files (`evaluate_pairs`) or straight from a prediction loop (`streaming.StreamingEvaluator`). Images must
be added in list order: the weighted instance sums are float sums in cityscapesScripts' order.
"""

from __future__ import annotations

import time

import numpy as np

from bench.evaluation.scoring import (
    VALID_IDS,
    VOID_LOOKALIKE_IDS,
    EvaluationResult,
    ImageStats,
    InstanceTotals,
    category_scores,
    class_scores,
)
from data.labels import NUM_LABEL_IDS


class Accumulator:
    """Confusion matrix and instance sums of the images added so far.

    `pred_ids` says what the predictions were ("label" or "train"): label-ID predictions that look like
    train IDs get the evaluator's warning. `started` (a `time.perf_counter()` value, default: now) is when
    the evaluation began, for `EvaluationResult.seconds`.
    """

    def __init__(self, *, pred_ids: str = "label", started: float | None = None) -> None:
        self.pred_ids = pred_ids
        self.started = time.perf_counter() if started is None else started
        self.confusion = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64)
        self.instances = InstanceTotals()
        self.n_images = 0

    def add(self, stats: ImageStats) -> None:
        """Add one image (in list order)."""
        self.confusion += stats.confusion
        self.instances.add(stats)
        self.n_images += 1

    def result(self, *, seconds: float | None = None) -> EvaluationResult:
        """The scores of the images added so far; `seconds` overrides the wall time since `started`."""
        class_iou, class_iiou = class_scores(self.confusion, self.instances)
        cat_iou, cat_iiou = category_scores(self.confusion, self.instances)
        warning = train_id_warning(self.confusion) if self.pred_ids == "label" and self.n_images else None
        return EvaluationResult(
            self.confusion.copy(),
            class_iou,
            class_iiou,
            cat_iou,
            cat_iiou,
            self.n_images,
            time.perf_counter() - self.started if seconds is None else seconds,
            [warning] if warning else [],
        )


def train_id_warning(conf: np.ndarray) -> str | None:
    """Train-ID files read as label IDs put most valid pixels on void ids 0..18: say so loudly."""
    valid = int(conf[VALID_IDS].sum())
    on_void = int(conf[np.ix_(VALID_IDS, VOID_LOOKALIKE_IDS)].sum())
    if valid and on_void / valid > 0.25:
        return (
            f"{100.0 * on_void / valid:.0f}% of the evaluated pixels are predicted as void label ids "
            f"(0..18): these predictions look like train IDs; if so, pass --pred-ids train"
        )
    return None
