"""Ground truth given as train IDs (ACDC, Dark Zurich, BDD100K: 0..18, 255 ignored), scored by the same
exact evaluator as Cityscapes' label IDs.

Why it is the same evaluator: each train ID is mapped back to the label ID it stands for
(`data.labels.TRAIN_TO_LABEL`, 255 -> 0 "unlabeled", ignored in evaluation) and the frame is then scored by
`scoring.score_image`, exactly what cityscapesScripts computes on the label-ID file that mapping would write
(tests/test_generalize_scoring.py runs cityscapesScripts on those files). No instance IDs exist in these
datasets, so the instance map is all zeros: iIoU is NaN, reported as absent, never as 0.

Invalid masks (`_gt_invIds.png`, ACDC and Dark Zurich: 1 = invalid, 0 = valid): the standard score counts
every labelled pixel; the valid-only score sets the invalid pixels to "unlabeled" first, so they are
ignored like any void pixel (data/layouts.py says where this comes from).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.png import read_png
from bench.evaluation.scores import EvaluationResult
from bench.evaluation.scoring import VALID_IDS, ImageStats, score_image, to_label_ids
from data.errors import UserError
from data.labels import IGNORE_ID, NUM_CLASSES, TRAIN_TO_LABEL

_IS_TRAIN_ID = np.zeros(256, dtype=bool)
_IS_TRAIN_ID[:NUM_CLASSES] = True
_IS_TRAIN_ID[IGNORE_ID] = True


@dataclass(frozen=True)
class GroundTruth:
    """One frame's labels as the evaluator takes them: label IDs, instance IDs, and the invalid mask."""

    labels: np.ndarray  # (H, W) uint8 label IDs
    instances: np.ndarray  # (H, W) instance IDs; zeros where the dataset has none
    invalid: np.ndarray | None  # (H, W) bool, True where the dataset marks the pixel invalid
    has_instances: bool
    path: Path


def train_to_label_ids(train_ids: np.ndarray, path: Path | str) -> np.ndarray:
    """A train-ID label map as label IDs (255 -> 0, unlabeled); a value that is no train ID is an error."""
    if train_ids.dtype != np.uint8 or train_ids.ndim != 2:
        raise UserError(
            f"ground truth {path} is not an 8-bit single-channel train-ID image: use the dataset's "
            f"*_gt_labelTrainIds.png (ACDC, Dark Zurich) or labels/sem_seg/masks/*.png (BDD100K)"
        )
    bad = ~_IS_TRAIN_ID[train_ids]
    if bad.any():
        value = int(train_ids[bad][0])
        raise UserError(
            f"ground truth {path} has value {value}, which is no train ID (0..{NUM_CLASSES - 1}, "
            f"{IGNORE_ID} ignored): is it a colour or label-ID file? use the train-ID masks"
        )
    return TRAIN_TO_LABEL[train_ids]


def read_ground_truth(
    labels: Path, encoding: str, instances: Path | None = None, invalid: Path | None = None
) -> GroundTruth:
    """Decode a frame's labels (`encoding` "label" or "train"), its instance IDs where given and its
    invalid mask where given, each PNG once."""
    raw = read_png(labels, "ground truth")
    if encoding == "train":
        label_ids = train_to_label_ids(raw, labels)
    elif encoding == "label":
        label_ids = raw
    else:
        raise ValueError(f"encoding must be 'label' or 'train', not {encoding!r}")
    inst = read_png(instances, "instance ground truth") if instances is not None else None
    mask = None
    if invalid is not None:
        values = read_png(invalid, "invalid mask")
        if values.shape != raw.shape[:2] or values.ndim != 2 or not np.isin(values, (0, 1)).all():
            raise UserError(
                f"invalid mask {invalid} must be a {raw.shape[1]}x{raw.shape[0]} single-channel PNG of 0 "
                f"(valid) and 1 (invalid), as ACDC's *_gt_invIds.png are"
            )
        mask = values.astype(bool)
    zeros = inst is None
    if zeros:
        inst = np.zeros(label_ids.shape, dtype=np.uint16)
    return GroundTruth(label_ids, inst, mask, not zeros, Path(labels))


def score_frame(
    gt: GroundTruth,
    prediction: np.ndarray,
    pred_ids: str = "train",
    *,
    valid_only: bool = False,
    name: str = "",
) -> ImageStats:
    """The frame's statistics, exactly `scoring.score_image`'s; `valid_only` ignores invalid pixels."""
    pred_name = name or f"prediction for {gt.path}"
    if prediction.shape[:2] != gt.labels.shape:
        raise UserError(
            f"{pred_name} is {prediction.shape[1]}x{prediction.shape[0]} but its ground truth {gt.path} is "
            f"{gt.labels.shape[1]}x{gt.labels.shape[0]}: predict at full resolution"
        )
    labels = gt.labels
    if valid_only:
        if gt.invalid is None:
            raise ValueError(f"{gt.path} has no invalid mask")
        labels = np.where(gt.invalid, np.uint8(0), labels)
    return score_image(
        labels,
        gt.instances,
        to_label_ids(prediction, pred_ids, Path(pred_name)),
        gt_path=gt.path,
        inst_path=gt.path if not gt.has_instances else "instances",
        pred_path=pred_name,
        pred_ids=pred_ids,
    )


def score_layout_prediction(frame, prediction: np.ndarray, name: str, pred_ids: str = "train") -> ImageStats:
    """One `data.layouts.Frame` scored on all its labelled pixels (the datasets' standard score), its
    labels decoded in their own encoding: what `bench evaluate` and `bench predict --evaluate` count."""
    gt = read_ground_truth(frame.labels, frame.encoding, frame.instances)
    return score_frame(gt, prediction, pred_ids, name=name)


def without_instances(result: EvaluationResult) -> EvaluationResult:
    """`result` with every instance score NaN (written as null, shown as absent): a dataset without
    instance IDs has no iIoU; the all-zero instance map would otherwise score 0 where a class is predicted."""
    nan = float("nan")
    return dataclasses.replace(
        result,
        class_inst_scores={k: nan for k in result.class_inst_scores},
        category_inst_scores={k: nan for k in result.category_inst_scores},
    )


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Correct pixels / evaluated GT pixels (a prediction of a void ID on a valid pixel counts wrong);
    NaN when nothing was evaluated."""
    rows = confusion[VALID_IDS]
    total = int(rows.sum())
    return float(confusion[VALID_IDS, VALID_IDS].sum()) / total if total else float("nan")
