"""The scoring maths of one image: its statistics, identical to cityscapesScripts (the totals and scores
they add up to: scores.py).

Why it is exact: the confusion matrix is the same (label ID x label ID, counts of every predicted id on
every GT id), the scores use the same integer sums and the same float operations, and the weighted instance
sums are accumulated in cityscapesScripts' order (images in list order, instances by ascending id).
Why it is fast: PNGs decoded with libpng (`imagecodecs`, bit-exact with Pillow); per image, the runs of
equal (instance, gt, pred) pixels found with three whole-image comparisons, then the confusion matrix
(`gt << 8 | pred`) and the per-instance counts as weighted `bincount`s over the few ten thousand runs, no
Python loop over pixels or instances; images spread over worker processes that return only small
per-image arrays (memory stays flat in the number of images). Decoding is the floor: see
`python -m bench perf eval`.

No TensorFlow here: an evaluation-only user should not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.errors import UserError
from data.labels import (
    CLASS_NAMES,
    NUM_LABEL_IDS,
    TRAIN_TO_LABEL,
    category2labels,
    id2label,
    labels,
)

PRED_ID_MODES = ("label", "train")

# cityscapesScripts' table of average instance sizes (evalPixelLevelSemanticLabeling.args.avgClassSize); iIoU
# weights each instance's pixels by avgClassSize / instance size. Copied, not imported: importing that module
# runs its global setup. The test suite checks it equals the module's table.
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

# --- label bookkeeping, all derived from the cityscapesScripts table -------------------------------------
EVAL_LABEL_IDS: tuple[int, ...] = tuple(lb.id for lb in labels if lb.id >= 0)  # cityscapesScripts' evalLabels
VALID_IDS = np.array([i for i in EVAL_LABEL_IDS if not id2label[i].ignoreInEval], dtype=np.intp)
IGNORED = np.array([id2label[i].ignoreInEval for i in range(NUM_LABEL_IDS)])


def _instance_categories() -> dict[str, list[int]]:
    """Categories whose labels all have instances (human, vehicle) -> their label ids, ignored ones included.

    This is cityscapesScripts' generateInstanceStats: vehicle keeps caravan and trailer, so predicting them on
    a car instance is a category hit; the license plate (id -1) is skipped.
    """
    out = {}
    for category, members in category2labels.items():
        ids = [lb.id for lb in members if lb.id >= 0]
        if all(lb.hasInstances for lb in members if lb.id >= 0):
            out[category] = ids
    return out


INSTANCE_CATEGORIES = _instance_categories()
_CATEGORY_CODES = {name: code for code, name in enumerate(INSTANCE_CATEGORIES, start=1)}
# label id -> instance-category code (0: none), for predictions (uint8 values) and for GT instance labels
_PRED_CATEGORY = np.zeros(256, dtype=np.uint8)
for _name, _ids in INSTANCE_CATEGORIES.items():
    _PRED_CATEGORY[_ids] = _CATEGORY_CODES[_name]
_INSTANCE_LABEL = (np.arange(65536) // 1000).astype(np.uint8)  # instance id -> label id (ids < 65536)
_INSTANCE_CATEGORY = _PRED_CATEGORY[_INSTANCE_LABEL]
SCORED_INSTANCE_LABELS = {lb.id for lb in labels if lb.hasInstances and not lb.ignoreInEval}

# train-ID predictions: 0..18 -> label id, 255 -> 0 (unlabeled, a false negative), anything else invalid (255)
_TRAIN_PRED_TO_LABEL = np.full(256, 255, dtype=np.uint8)
_TRAIN_PRED_TO_LABEL[: len(CLASS_NAMES)] = TRAIN_TO_LABEL[: len(CLASS_NAMES)]
_TRAIN_PRED_TO_LABEL[255] = 0

VOID_LOOKALIKE_IDS = np.array([i for i in range(len(CLASS_NAMES)) if IGNORED[i]], dtype=np.intp)
"""Void label ids inside 0..18: train-ID predictions read as label IDs land here."""


# --- per-image statistics --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageStats:
    """What one image adds to the totals: small arrays only, so results from workers stay cheap."""

    confusion: np.ndarray  # (34, 34) int64: rows GT label id, columns predicted label id
    instance_ids: np.ndarray  # ascending GT instance ids of scored instance classes
    instance_sizes: np.ndarray
    instance_hits: np.ndarray  # pixels predicted as the instance's label
    category_hits: np.ndarray  # pixels predicted as any label of the instance's category


def to_label_ids(pred: np.ndarray, pred_ids: str, path: Path) -> np.ndarray:
    """The prediction as uint8 label ids; raises on values that are no label (or train) id."""
    if pred.ndim != 2:
        channels = pred.shape[-1] if pred.ndim == 3 else pred.ndim
        raise UserError(
            f"prediction {path} has {channels} channels (a colour image?): write single-channel "
            f"PNGs of {pred_ids} IDs, not colourised maps"
        )
    if pred.dtype != np.uint8:
        low, high = int(pred.min()), int(pred.max())
        if low < 0 or high > 255:
            bad = high if high > 255 else low
            raise UserError(_bad_value_message(path, bad, pred_ids))
        pred = pred.astype(np.uint8)
    if pred_ids == "train":
        mapped = _TRAIN_PRED_TO_LABEL[pred]
        # 255 in mapped means a value outside 0..18/255 (255 itself maps to 0)
        if np.any(mapped == 255):
            values = np.unique(pred[mapped == 255])
            raise UserError(_bad_value_message(path, int(values[-1]), pred_ids))
        return mapped
    return pred


def _bad_value_message(path: Path, value: int, pred_ids: str) -> str:
    if pred_ids == "train":
        return (
            f"prediction {path} has value {value}, which is no train ID (0..18, 255 for void): "
            f"write train IDs, or pass --pred-ids label for label-ID files"
        )
    fix = (
        "255 is the void value of train-ID files: pass --pred-ids train if these are train IDs"
        if value == 255
        else "write label IDs (data.labels.to_label_ids converts train IDs)"
    )
    return (
        f"prediction {path} has value {value}, which is no Cityscapes label ID "
        f"(0..{NUM_LABEL_IDS - 1}): {fix}"
    )


def score_image(
    gt_labels: np.ndarray,
    gt_instances: np.ndarray,
    pred_label_ids: np.ndarray,
    *,
    gt_path: Path | str = "ground truth",
    inst_path: Path | str = "instances",
    pred_path: Path | str = "prediction",
    pred_ids: str = "label",
) -> ImageStats:
    """Confusion counts and per-instance counts of one image (predictions already as uint8 label ids).

    The paths and pred_ids only name the files in error messages.
    """
    check_ground_truth(gt_labels, gt_instances, gt_path=gt_path, inst_path=inst_path)
    starts, lengths = _runs(gt_instances, gt_labels, pred_label_ids)
    return score_runs(
        lengths,
        gt_labels.ravel()[starts],
        gt_instances.ravel()[starts],
        pred_label_ids.ravel()[starts],
        gt_path=gt_path,
        inst_path=inst_path,
        pred_path=pred_path,
        pred_ids=pred_ids,
    )


def check_ground_truth(
    gt_labels: np.ndarray, gt_instances: np.ndarray, *, gt_path: Path | str, inst_path: Path | str
) -> None:
    """The checks of the decoded GT arrays that come before any counting (types, shapes, id range)."""
    if gt_labels.dtype != np.uint8 or gt_labels.ndim != 2:
        raise UserError(
            f"ground truth {gt_path} is not an 8-bit single-channel label-ID image: "
            f"use the *_gtFine_labelIds.png files"
        )
    if gt_instances.shape != gt_labels.shape:
        raise UserError(
            f"instance file {inst_path} is {gt_instances.shape[1::-1]} but {gt_path} is "
            f"{gt_labels.shape[1::-1]}: use the matching *_gtFine_instanceIds.png"
        )
    if (
        gt_instances.dtype != np.uint16
        and gt_instances.size
        and (int(gt_instances.min()) < 0 or int(gt_instances.max()) >= 65536)
    ):
        raise UserError(
            f"instance file {inst_path} has ids outside 0..65535: use the "
            f"*_gtFine_instanceIds.png files of the dataset"
        )


def score_runs(
    lengths: np.ndarray,
    gt_runs: np.ndarray,
    inst_runs: np.ndarray,
    pred_runs: np.ndarray,
    *,
    gt_path: Path | str = "ground truth",
    inst_path: Path | str = "instances",
    pred_path: Path | str = "prediction",
    pred_ids: str = "label",
) -> ImageStats:
    """`score_image` from the runs of equal (instance, gt, pred) pixels: their lengths and values.

    The one place the counting happens, whether the runs come from three arrays (`_runs`) or from cached
    ground-truth runs merged with a prediction (`bench.evaluation.runs`): the same runs give the same sums.
    """
    # confusion: (gt, pred) of every run, weighted by its length
    counts = _weighted_counts(gt_runs.astype(np.intp) << 8 | pred_runs, lengths, 65536).reshape(256, 256)
    if counts[NUM_LABEL_IDS:].any():
        bad = int(np.flatnonzero(counts[NUM_LABEL_IDS:].sum(axis=1))[0]) + NUM_LABEL_IDS
        raise UserError(
            f"ground truth {gt_path} has value {bad}, which is no label ID: "
            f"use the *_gtFine_labelIds.png files of the dataset"
        )
    if counts[:, NUM_LABEL_IDS:].any():
        bad = int(np.flatnonzero(counts[:, NUM_LABEL_IDS:].sum(axis=0))[-1]) + NUM_LABEL_IDS
        raise UserError(_bad_value_message(Path(pred_path), bad, pred_ids))
    confusion = counts[:NUM_LABEL_IDS, :NUM_LABEL_IDS]

    # instances: runs on GT instance ids > 1000 (cityscapesScripts' instList)
    ids = inst_runs.astype(np.intp)
    on_instance = ids > 1000
    ids, lengths, pred = ids[on_instance], lengths[on_instance], pred_runs[on_instance]
    hits = _INSTANCE_LABEL[ids] == pred
    category = _INSTANCE_CATEGORY[ids]
    category_hits = (category == _PRED_CATEGORY[pred]) & (category != 0)
    sizes = _weighted_counts(ids, lengths, 65536)
    present = np.flatnonzero(sizes)
    label_of = present // 1000
    scored = np.isin(label_of, list(SCORED_INSTANCE_LABELS))
    unknown = ~scored & ((label_of >= NUM_LABEL_IDS) | ~IGNORED[np.minimum(label_of, NUM_LABEL_IDS - 1)])
    if unknown.any():
        bad = int(present[unknown][0])
        raise UserError(
            f"instance file {inst_path} has instance id {bad}, but label {bad // 1000} has no "
            f"instances: use the *_gtFine_instanceIds.png files of the dataset"
        )
    present = present[scored]
    return ImageStats(
        confusion,
        present,
        sizes[present],
        _weighted_counts(ids[hits], lengths[hits], 65536)[present],
        _weighted_counts(ids[category_hits], lengths[category_hits], 65536)[present],
    )


def _runs(*images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of the runs of equal (instance, gt, pred) pixels in raster order.

    Label maps are piecewise constant, so a full frame has a few ten thousand runs instead of two million
    pixels; every count is then a cheap weighted bincount over runs. (Exact for any input: a noisy
    prediction only makes more runs.) Compared image by image: no wide joint key is built.
    """
    flat = [image.ravel() for image in images]
    change = np.not_equal(flat[0][1:], flat[0][:-1])
    scratch = np.empty_like(change)
    for image in flat[1:]:
        np.not_equal(image[1:], image[:-1], out=scratch)
        change |= scratch
    starts = np.flatnonzero(change)
    starts += 1
    starts = np.concatenate(([0], starts))
    return starts, np.diff(starts, append=flat[0].size)


def _weighted_counts(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Sum of weights per index value as int64 (float64 sums of integers are exact below 2**53)."""
    return np.bincount(index, weights=weights, minlength=size).astype(np.int64)
