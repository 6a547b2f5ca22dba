"""Scores from exact totals, identical to cityscapesScripts: the instance sums, IoU and iIoU per class and
category with their means, and the `EvaluationResult` every evaluation returns."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.common.numbers import nan_to_none
from bench.evaluation.scoring import (
    AVG_CLASS_SIZE,
    EVAL_LABEL_IDS,
    IGNORED,
    INSTANCE_CATEGORIES,
    SCORED_INSTANCE_LABELS,
    VALID_IDS,
    ImageStats,
)
from data.labels import (
    CLASS_NAMES,
    INSTANCE_CLASS_NAMES,
    category2labels,
    id2label,
)

if TYPE_CHECKING:
    from bench.evaluation.boundary import BoundaryResult
    from bench.evaluation.calibration_fit import CalibrationResult
    from bench.evaluation.frames import FrameScores


@dataclass
class InstanceTotals:
    """Weighted instance sums per class and per category, accumulated in cityscapesScripts' order."""

    classes: dict[str, list[float]] = field(
        default_factory=lambda: {id2label[i].name: [0.0, 0.0] for i in sorted(SCORED_INSTANCE_LABELS)}
    )
    categories: dict[str, list[float]] = field(
        default_factory=lambda: {c: [0.0, 0.0] for c in INSTANCE_CATEGORIES}
    )

    def add(self, stats: ImageStats) -> None:
        rows = zip(
            stats.instance_ids.tolist(),
            stats.instance_sizes.tolist(),
            stats.instance_hits.tolist(),
            stats.category_hits.tolist(),
            strict=True,
        )
        for inst_id, size, hit, cat_hit in rows:
            label = id2label[inst_id // 1000]
            weight = AVG_CLASS_SIZE[label.name] / float(size)
            sums = self.classes[label.name]
            sums[0] += float(hit) * weight
            sums[1] += float(size - hit) * weight
            if label.category in self.categories:
                sums = self.categories[label.category]
                sums[0] += float(cat_hit) * weight
                sums[1] += float(size - cat_hit) * weight


def _ratio(tp: float, denom: float) -> float:
    return float("nan") if denom == 0 else tp / denom


def class_scores(conf: np.ndarray, inst: InstanceTotals) -> tuple[dict[str, float], dict[str, float]]:
    iou, iiou = {}, {}
    for label_id in EVAL_LABEL_IDS:
        name = id2label[label_id].name
        if IGNORED[label_id]:
            iou[name] = iiou[name] = float("nan")
            continue
        tp = int(conf[label_id, label_id])
        fn = int(conf[label_id].sum()) - tp
        fp = int(conf[VALID_IDS, label_id].sum()) - tp
        iou[name] = _ratio(float(tp), float(tp + fp + fn))
        if name in inst.classes:
            tp_w, fn_w = inst.classes[name]
            iiou[name] = _ratio(tp_w, tp_w + float(fp) + fn_w)
        else:
            iiou[name] = float("nan")
    return iou, iiou


def category_scores(conf: np.ndarray, inst: InstanceTotals) -> tuple[dict[str, float], dict[str, float]]:
    iou, iiou = {}, {}
    for category, members in category2labels.items():
        ids = [lb.id for lb in members if not lb.ignoreInEval and lb.id >= 0]
        others = [i for i in VALID_IDS.tolist() if id2label[i].category != category]
        if ids:
            tp = int(conf[np.ix_(ids, ids)].sum())
            fn = int(conf[ids].sum()) - tp
            fp = int(conf[np.ix_(others, ids)].sum())
            iou[category] = _ratio(float(tp), float(tp + fp + fn))
        else:
            iou[category] = float("nan")
        if category in inst.categories:
            tp_w, fn_w = inst.categories[category]
            fp = int(conf[np.ix_(others, INSTANCE_CATEGORIES[category])].sum())
            iiou[category] = _ratio(tp_w, tp_w + float(fp) + fn_w)
        else:
            iiou[category] = float("nan")
    return iou, iiou


def _mean(scores: dict[str, float]) -> float:
    """cityscapesScripts' getScoreAverage: the mean of the non-NaN scores, summed in key order."""
    valid = [v for v in scores.values() if not math.isnan(v)]
    if not valid:
        return float("nan")
    total = 0.0
    for v in valid:
        total += v
    return total / len(valid)


@dataclass
class EvaluationResult:
    """Scores of one evaluation; fractions in [0, 1], NaN where a class is absent from GT and predictions."""

    confusion: np.ndarray  # (34, 34) int64, rows GT label id, columns predicted label id
    class_scores: dict[str, float]  # cityscapesScripts' classScores: all 34 label names, NaN for ignored ones
    class_inst_scores: dict[str, float]
    category_scores: dict[str, float]
    category_inst_scores: dict[str, float]
    n_images: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    boundary: BoundaryResult | None = None  # Boundary IoU, when asked for (bench/evaluation/boundary.py)
    calibration: CalibrationResult | None = None  # from the logits, when the loop had them
    frames: FrameScores | None = None  # per-frame matrices and scores (bench/evaluation/frames.py)

    @property
    def measures(self) -> dict[str, object]:
        """aAcc, mAcc, fwIoU, Dice, F1, precision, recall from the same matrix (measures.py)."""
        from bench.evaluation.measures import measures_dict

        return measures_dict(self.confusion)

    @property
    def class_iou(self) -> dict[str, float]:
        """IoU of the 19 evaluated classes in train-ID order."""
        return {name: self.class_scores[name] for name in CLASS_NAMES}

    @property
    def class_iiou(self) -> dict[str, float]:
        """iIoU of the 8 instance classes."""
        return {name: self.class_inst_scores[name] for name in INSTANCE_CLASS_NAMES}

    @property
    def category_iou(self) -> dict[str, float]:
        """IoU of the 7 categories that hold an evaluated class (void left out)."""
        return {
            c: v
            for c, v in self.category_scores.items()
            if any(not lb.ignoreInEval for lb in category2labels[c])
        }

    @property
    def category_iiou(self) -> dict[str, float]:
        """iIoU of the categories whose classes all have instances (human, vehicle)."""
        return {c: self.category_inst_scores[c] for c in INSTANCE_CATEGORIES}

    @property
    def miou(self) -> float:
        return _mean(self.class_scores)

    @property
    def iiou(self) -> float:
        return _mean(self.class_inst_scores)

    @property
    def category_miou(self) -> float:
        return _mean(self.category_scores)

    @property
    def category_iiou_mean(self) -> float:
        return _mean(self.category_inst_scores)

    def to_cityscapes_dict(self) -> dict[str, object]:
        """The score keys of cityscapesScripts' result JSON (NaN kept as float NaN)."""
        return {
            "classScores": dict(self.class_scores),
            "classInstScores": dict(self.class_inst_scores),
            "categoryScores": dict(self.category_scores),
            "categoryInstScores": dict(self.category_inst_scores),
            "averageScoreClasses": self.miou,
            "averageScoreInstClasses": self.iiou,
            "averageScoreCategories": self.category_miou,
            "averageScoreInstCategories": self.category_iiou_mean,
        }

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write to_cityscapes_dict() (plus image count and confusion matrix, and our `boundaryIoU` and
        `calibration` sections when present, our `measures`, and the per-frame `frames` and `cities`)
        atomically, NaN as null."""
        data = nan_to_none(self.to_cityscapes_dict())
        data["nImages"] = self.n_images
        data["confMatrix"] = self.confusion.tolist()
        data["measures"] = nan_to_none(self.measures)
        if self.frames is not None:
            data.update(nan_to_none(self.frames.to_dict()))
        if self.boundary is not None:
            data["boundaryIoU"] = nan_to_none(self.boundary.to_dict())
        if self.calibration is not None:
            data["calibration"] = nan_to_none(self.calibration.to_dict())
        from bench.common.atomic import write_text

        return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
