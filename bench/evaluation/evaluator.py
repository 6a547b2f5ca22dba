"""The evaluation driver: match files, score them in worker processes, sum in order."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.matching import match_predictions
from bench.evaluation.png import read_png
from bench.evaluation.pool import map_images
from bench.evaluation.scoring import (
    PRED_ID_MODES,
    VALID_IDS,
    VOID_LOOKALIKE_IDS,
    EvaluationResult,
    ImageStats,
    InstanceTotals,
    category_scores,
    class_scores,
    score_image,
    to_label_ids,
)
from data.cityscapes import list_samples
from data.errors import UserError
from data.labels import NUM_LABEL_IDS


@dataclass(frozen=True)
class _Task:
    key: str
    gt_labels: Path
    gt_instances: Path
    prediction: Path
    pred_ids: str


def _score_task(task: _Task) -> ImageStats:
    gt = read_png(task.gt_labels, "ground truth")
    inst = read_png(task.gt_instances, "instance ground truth")
    pred = read_png(task.prediction, "prediction")
    if pred.shape[:2] != gt.shape[:2]:
        raise UserError(
            f"prediction {task.prediction} is {pred.shape[1]}x{pred.shape[0]} but its ground "
            f"truth {task.gt_labels} is {gt.shape[1]}x{gt.shape[0]}: predict at full resolution"
        )
    labels_ = to_label_ids(pred, task.pred_ids, task.prediction)
    return score_image(
        gt,
        inst,
        labels_,
        gt_path=task.gt_labels,
        inst_path=task.gt_instances,
        pred_path=task.prediction,
        pred_ids=task.pred_ids,
    )


def evaluate_pairs(
    tasks: Sequence[_Task],
    *,
    workers: int | None = None,
    progress: bool = False,
    started: float | None = None,
) -> EvaluationResult:
    """Score (GT, prediction) tasks; the totals are accumulated in task order."""
    started = time.perf_counter() if started is None else started
    conf = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64)
    inst = InstanceTotals()
    stream = map_images(_score_task, tasks, workers)
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, total=len(tasks), desc="evaluate", unit="img")
    for stats in stream:
        conf += stats.confusion
        inst.add(stats)
    class_iou, class_iiou = class_scores(conf, inst)
    cat_iou, cat_iiou = category_scores(conf, inst)
    warnings = [w for w in [_train_id_warning(conf)] if w and tasks and tasks[0].pred_ids == "label"]
    return EvaluationResult(
        conf, class_iou, class_iiou, cat_iou, cat_iiou, len(tasks), time.perf_counter() - started, warnings
    )


def _train_id_warning(conf: np.ndarray) -> str | None:
    """Train-ID files read as label IDs put most valid pixels on void ids 0..18: say so loudly."""
    valid = int(conf[VALID_IDS].sum())
    on_void = int(conf[np.ix_(VALID_IDS, VOID_LOOKALIKE_IDS)].sum())
    if valid and on_void / valid > 0.25:
        return (
            f"{100.0 * on_void / valid:.0f}% of the evaluated pixels are predicted as void label ids "
            f"(0..18): these predictions look like train IDs; if so, pass --pred-ids train"
        )
    return None


def evaluate(
    gt_root: str | os.PathLike | None,
    split: str,
    pred_dir: str | os.PathLike,
    *,
    pred_ids: str = "label",
    workers: int | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate the predictions in pred_dir against the GT of `split` (gt_root None: $CITYSCAPES_DATASET)."""
    started = time.perf_counter()
    if pred_ids not in PRED_ID_MODES:
        raise UserError(f"pred_ids must be one of {PRED_ID_MODES}, not {pred_ids!r}")
    samples = list_samples(gt_root, split)
    predictions = match_predictions(samples, pred_dir)
    tasks = [
        _Task(s.key, s.label_ids, s.instance_ids, p, pred_ids)
        for s, p in zip(samples, predictions, strict=True)
    ]
    return evaluate_pairs(tasks, workers=workers, progress=progress, started=started)
