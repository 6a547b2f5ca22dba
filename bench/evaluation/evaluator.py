"""The evaluation driver: match files, score them in worker processes, sum in order."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.gt_cache import AUTO, GTCache, resolve_gt_cache
from bench.evaluation.matching import match_predictions
from bench.evaluation.png import read_png
from bench.evaluation.pool import map_images
from bench.evaluation.scores import EvaluationResult
from bench.evaluation.scoring import PRED_ID_MODES, ImageStats, score_image, to_label_ids
from data.cityscapes import list_samples
from data.errors import UserError


@dataclass(frozen=True)
class _Task:
    key: str
    gt_labels: Path
    gt_instances: Path
    prediction: Path
    pred_ids: str
    boundary_ratio: float | None = None  # also count Boundary IoU with this dilation ratio
    gt_cache: GTCache | None = None


def score_prediction(
    gt_labels: Path,
    gt_instances: Path,
    pred: np.ndarray,
    pred_path: Path | str,
    pred_ids: str = "label",
    gt_cache: GTCache | None = None,
    *,
    gt: np.ndarray | None = None,
    value_map: np.ndarray | None = None,
) -> ImageStats:
    """Score the prediction array against one frame's GT (`pred_path` names it in errors): the GT is
    decoded from its PNGs (the labels given as `gt` when the caller decoded them already), or read from
    `gt_cache` (and stored there on the first use). `value_map`: a uint8 lookup the prediction's values
    go through first (`data.labels.TRAIN_TO_LABEL` for train IDs), run by run with a cache."""
    names = {"gt_path": gt_labels, "inst_path": gt_instances, "pred_path": pred_path, "pred_ids": pred_ids}
    if value_map is not None and gt_cache is None:
        pred = value_map[np.asarray(pred, dtype=np.uint8)]
    if gt_cache is None:
        if gt is None:
            gt = read_png(gt_labels, "ground truth")
        inst = read_png(gt_instances, "instance ground truth")
        _check_size(pred, gt.shape, pred_path, gt_labels)
        return score_image(gt, inst, to_label_ids(pred, pred_ids, Path(pred_path)), **names)
    frame = gt_cache.open(Path(gt_labels), Path(gt_instances))
    _check_size(pred, frame.runs.shape, pred_path, gt_labels)
    if value_map is None:
        stats = frame.runs.score(to_label_ids(pred, pred_ids, Path(pred_path)), **names)
    else:
        stats = frame.runs.score(pred, value_map=value_map, **names)
    frame.commit()  # only GT that scored without error is stored
    return stats


def _check_size(pred: np.ndarray, shape: tuple[int, ...], pred_path: Path | str, gt_labels: Path) -> None:
    if pred.shape[:2] != tuple(shape[:2]):
        raise UserError(
            f"prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]} but its ground "
            f"truth {gt_labels} is {shape[1]}x{shape[0]}: predict at full resolution"
        )


def _score_task(task: _Task) -> ImageStats:
    pred = read_png(task.prediction, "prediction")
    return score_prediction(
        task.gt_labels, task.gt_instances, pred, task.prediction, task.pred_ids, task.gt_cache
    )


def _score_task_with_boundary(task: _Task):
    """(ImageStats, BoundaryCounts) of one file pair, the GT decoded once for both."""
    from bench.evaluation.boundary import boundary_counts
    from data.labels import to_train_ids

    pred = read_png(task.prediction, "prediction")
    if task.gt_cache is None:
        gt = read_png(task.gt_labels, "ground truth")
        stats = score_prediction(
            task.gt_labels, task.gt_instances, pred, task.prediction, task.pred_ids, gt=gt
        )
    else:  # the labels back from the entry just read (or written): no PNG decoded when it was there
        args = (task.gt_labels, task.gt_instances, pred, task.prediction, task.pred_ids, task.gt_cache)
        stats = score_prediction(*args)
        gt = task.gt_cache.open(task.gt_labels, task.gt_instances).runs.to_arrays()[0]
    labels_ = to_label_ids(pred, task.pred_ids, task.prediction)
    return stats, boundary_counts(to_train_ids(gt), to_train_ids(labels_), ratio=task.boundary_ratio)


def evaluate_pairs(
    tasks: Sequence[_Task],
    *,
    workers: int | None = None,
    progress: bool = False,
    started: float | None = None,
) -> EvaluationResult:
    """Score (GT, prediction) tasks; the totals are accumulated in task order."""
    totals = Accumulator(pred_ids=tasks[0].pred_ids if tasks else "label", started=started)
    ratio = tasks[0].boundary_ratio if tasks else None
    stream = map_images(_score_task if ratio is None else _score_task_with_boundary, tasks, workers)
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, total=len(tasks), desc="evaluate", unit="img")
    keys = (task.key for task in tasks)
    if ratio is None:
        for stats in stream:
            totals.add(stats, next(keys))
        return totals.result()
    from bench.evaluation.boundary import BoundaryResult, empty_counts

    counts = empty_counts()
    for stats, frame_counts in stream:
        totals.add(stats, next(keys))
        counts += frame_counts
    result = totals.result()
    return dataclasses.replace(
        result, boundary=BoundaryResult(counts, ratio, result.n_images, result.seconds)
    )


def evaluate(
    gt_root: str | os.PathLike | None,
    split: str,
    pred_dir: str | os.PathLike,
    *,
    pred_ids: str = "label",
    workers: int | None = None,
    progress: bool = False,
    boundary_ratio: float | None = None,
    gt_cache: GTCache | str | os.PathLike | None = AUTO,
) -> EvaluationResult:
    """Evaluate the predictions in pred_dir against the GT of `split` (gt_root None: $CITYSCAPES_DATASET);
    with `boundary_ratio`, Boundary IoU too (`result.boundary`). `gt_cache`: where decoded GT is kept
    between evaluations (`AUTO`: the environment's; None: none)."""
    started = time.perf_counter()
    if boundary_ratio is not None:
        from bench.evaluation.boundary import band_width

        band_width((1, 1), boundary_ratio)  # a bad ratio fails before any work
    if pred_ids not in PRED_ID_MODES:
        raise UserError(f"pred_ids must be one of {PRED_ID_MODES}, not {pred_ids!r}")
    samples = list_samples(gt_root, split)
    predictions = match_predictions(samples, pred_dir)
    cache = resolve_gt_cache(gt_cache)
    tasks = [
        _Task(s.key, s.label_ids, s.instance_ids, p, pred_ids, boundary_ratio, cache)
        for s, p in zip(samples, predictions, strict=True)
    ]
    return evaluate_pairs(tasks, workers=workers, progress=progress, started=started)


def _score_layout_task(task: tuple) -> ImageStats:
    from bench.evaluation.train_ids import score_layout_prediction

    frame, prediction, pred_ids = task
    return score_layout_prediction(frame, read_png(prediction, "prediction"), str(prediction), pred_ids)


def evaluate_layout(
    root: str | os.PathLike | None,
    fmt: str,
    split: str,
    pred_dir: str | os.PathLike,
    *,
    pred_ids: str = "label",
    workers: int | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """`evaluate` for a dataset of another layout (data/layouts.py: ACDC, Dark Zurich, Foggy Cityscapes,
    BDD100K): its frames' labels (train IDs or label IDs) scored by the same exact maths
    (bench/evaluation/train_ids.py), every labelled pixel counted (the datasets' standard score: `bench
    generalize` adds the valid-pixel one); the prediction of frame KEY is the one PNG named `{KEY}*.png`,
    what `bench predict --dataset ROOT` writes. No GT cache: these frames are decoded each time."""
    from data.layouts import list_frames, with_unique_keys

    started = time.perf_counter()
    if pred_ids not in PRED_ID_MODES:
        raise UserError(f"pred_ids must be one of {PRED_ID_MODES}, not {pred_ids!r}")
    frames = with_unique_keys(list_frames(root, fmt, split))
    predictions = match_predictions(frames, pred_dir)
    tasks = [(f, p, pred_ids) for f, p in zip(frames, predictions, strict=True)]
    totals = Accumulator(pred_ids=pred_ids, started=started)
    stream = map_images(_score_layout_task, tasks, workers)
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, total=len(tasks), desc="evaluate", unit="img")
    for frame, stats in zip(frames, stream, strict=True):
        totals.add(stats, frame.key)
    if any(f.instances is None for f in frames):
        from bench.evaluation.train_ids import without_instances

        return without_instances(totals.result())
    return totals.result()
