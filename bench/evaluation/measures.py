"""The field's other measures from the same confusion matrix as the IoU: aAcc, mAcc, fwIoU, Dice, F1,
precision and recall, per class and averaged (what mmsegmentation and detectron2 report beside mIoU).

Every count is the one cityscapesScripts' IoU uses (scores.py `class_scores`), so nothing is re-counted:
for a class c (rows GT label id, columns predicted label id of the (34, 34) matrix),
  tp_c   = conf[c, c]
  gt_c   = conf[c, :].sum()            GT pixels of c, whatever was predicted (void predictions are misses)
  pred_c = conf[VALID_IDS, c].sum()    predictions of c on pixels whose GT is evaluated (void GT ignored)
mmsegmentation's `IoUMetric` (mmseg/evaluation/metrics/iou_metric.py at open-mmlab/mmsegmentation
3d50cc3c, `intersect_and_union` and `total_area_to_metrics`) drops ignored GT pixels first
(`mask = (label != ignore_index)`), so its `area_pred_label` is our pred_c and `area_label` our gt_c:
  aAcc = total_area_intersect.sum() / total_area_label.sum()            -> sum tp / sum gt
  Acc  = total_area_intersect / total_area_label                        -> tp / gt   (= Recall)
  Dice = 2 * total_area_intersect / (total_area_pred_label + total_area_label)
  Precision = total_area_intersect / total_area_pred_label              -> tp / pred
  Fscore = (1 + beta**2) * (precision * recall) / ((beta**2 * precision) + recall), beta = 1
  and every `m` average is `np.nanmean` over the classes.
detectron2's `SemSegEvaluator.evaluate` (detectron2/evaluation/sem_seg_evaluation.py at
facebookresearch/detectron2 02b5c4e2, lines 189-200; its matrix is [pred, gt], ignore in the last row and
column) gives the same mAcc and pixel accuracy and defines
  class_weights = pos_gt / np.sum(pos_gt)                        (line 190)
  iou_valid = np.logical_and(acc_valid, union > 0)               (line 195, acc_valid = pos_gt > 0)
  fiou = np.sum(iou[iou_valid] * class_weights[iou_valid])       (line 199)
Where a class has no GT pixels but some predictions, Dice is 0 while F1 is NaN (recall 0/0): as in mmseg.
Fractions in [0, 1]; NaN where undefined.
"""

from __future__ import annotations

import numpy as np

from bench.evaluation.scoring import VALID_IDS
from data.labels import CLASS_NAMES, TRAIN_TO_LABEL

CLASS_LABEL_IDS = np.asarray(TRAIN_TO_LABEL[: len(CLASS_NAMES)], dtype=np.intp)
"""Label id of each of the 19 evaluated classes, in train-ID order."""

PER_CLASS = ("iou", "acc", "precision", "recall", "dice", "f1")
AVERAGES = ("aAcc", "mAcc", "fwIoU", "mDice", "mF1", "mPrecision", "mRecall")


def counts(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tp, gt, pred) of the 19 classes, float64, for one (34, 34) matrix or a stack (..., 34, 34)."""
    conf = np.asarray(conf)
    ids = CLASS_LABEL_IDS
    tp = conf[..., ids, ids]
    gt = conf[..., ids, :].sum(axis=-1)
    pred = conf[..., VALID_IDS, :][..., ids].sum(axis=-2)
    return tp.astype(np.float64), gt.astype(np.float64), pred.astype(np.float64)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def per_class(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Each of PER_CLASS as an array over the 19 classes (a stack of matrices gives (..., 19))."""
    tp, gt, pred = counts(conf)
    precision = _divide(tp, pred)
    recall = _divide(tp, gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = 2.0 * (precision * recall) / (precision + recall)  # mmseg's f_score, beta = 1; NaN propagates
    return {
        "iou": _divide(tp, gt + pred - tp),
        "acc": recall,
        "precision": precision,
        "recall": recall,
        "dice": _divide(2.0 * tp, gt + pred),
        "f1": f1,
    }


def _nanmean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def averages(conf: np.ndarray) -> dict[str, float]:
    """aAcc, mAcc, fwIoU, mDice, mF1, mPrecision, mRecall of one (34, 34) matrix."""
    tp, gt, _ = counts(conf)
    scores = per_class(conf)
    total = gt.sum()
    iou = scores["iou"]
    weighted = (gt > 0) & ~np.isnan(iou)  # detectron2's iou_valid
    return {
        "aAcc": float(tp.sum() / total) if total else float("nan"),
        "mAcc": _nanmean(scores["acc"]),
        "fwIoU": float(np.sum(iou[weighted] * (gt[weighted] / total))) if total else float("nan"),
        "mDice": _nanmean(scores["dice"]),
        "mF1": _nanmean(scores["f1"]),
        "mPrecision": _nanmean(scores["precision"]),
        "mRecall": _nanmean(scores["recall"]),
    }


def measures_dict(conf: np.ndarray) -> dict[str, object]:
    """Averages and per-class values by class name: the run JSON's `measures` section."""
    scores = per_class(conf)
    return {
        **averages(conf),
        "perClass": {name: {k: float(scores[k][i]) for k in PER_CLASS} for i, name in enumerate(CLASS_NAMES)},
    }
