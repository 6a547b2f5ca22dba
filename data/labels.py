"""Label tables derived from cityscapesscripts' `labels.py`, the one source of truth.

Nothing here is retyped: every table is computed from `cityscapesscripts.helpers.labels.labels`.
The module imports only numpy and the label table, so the evaluator stays light.
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import category2labels, id2label, labels, name2label, trainId2label

__all__ = [
    "IGNORE_ID",
    "NUM_CLASSES",
    "NUM_LABEL_IDS",
    "LABEL_TO_TRAIN",
    "TRAIN_TO_LABEL",
    "TRAIN_TO_COLOR",
    "CLASS_NAMES",
    "SHORT_NAMES",
    "INSTANCE_CLASS_NAMES",
    "labels",
    "id2label",
    "name2label",
    "trainId2label",
    "category2labels",
    "to_train_ids",
    "to_label_ids",
    "colorize",
]

IGNORE_ID = 255
"""Train ID of pixels that are not evaluated (void and ignored classes)."""

EVALUATED = sorted(
    (lb for lb in labels if not lb.ignoreInEval and 0 <= lb.trainId < IGNORE_ID), key=lambda lb: lb.trainId
)
NUM_CLASSES = len(EVALUATED)
NUM_LABEL_IDS = max(lb.id for lb in labels) + 1
"""Label IDs run 0..33; anything larger is not a Cityscapes label ID."""

CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVALUATED)
INSTANCE_CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVALUATED if lb.hasInstances)

# The seed table's column headers, in train-ID order. Abbreviations of CLASS_NAMES, checked against them.
_SHORT = {
    "sidewalk": "swalk",
    "building": "build.",
    "traffic light": "tlight",
    "traffic sign": "sign",
    "vegetation": "veg.",
    "motorcycle": "mbike",
    "bicycle": "bike",
}
SHORT_NAMES: tuple[str, ...] = tuple(_SHORT.get(name, name) for name in CLASS_NAMES)


def _label_to_train() -> np.ndarray:
    lut = np.full(256, IGNORE_ID, dtype=np.uint8)
    for lb in labels:
        # license plate has id -1 (never in a labelIds image) and ignored labels carry 255 or -1.
        if 0 <= lb.id < 256 and not lb.ignoreInEval and 0 <= lb.trainId < IGNORE_ID:
            lut[lb.id] = lb.trainId
    return lut


LABEL_TO_TRAIN: np.ndarray = _label_to_train()
"""uint8[256]: labelId -> trainId, 255 for void/ignored ids and for values that are no label id."""

TRAIN_TO_LABEL: np.ndarray = np.zeros(256, dtype=np.uint8)
"""uint8[256]: trainId -> labelId; 255 (and any unused train id) maps to 0 (unlabeled)."""
for _lb in EVALUATED:
    TRAIN_TO_LABEL[_lb.trainId] = _lb.id

TRAIN_TO_COLOR: np.ndarray = np.zeros((256, 3), dtype=np.uint8)
"""uint8[256, 3]: trainId -> RGB colour of the official palette; 255 stays black."""
for _lb in EVALUATED:
    TRAIN_TO_COLOR[_lb.trainId] = _lb.color


def to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelIds image (any integer dtype) to train IDs, 255 where not evaluated."""
    label_ids = np.asarray(label_ids)
    if label_ids.dtype != np.uint8:
        label_ids = np.where((label_ids >= 0) & (label_ids < 256), label_ids, 0).astype(np.uint8)
    return LABEL_TO_TRAIN[label_ids]


def to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a train-ID image to label IDs (the official submission format); 255 becomes 0 (unlabeled)."""
    return TRAIN_TO_LABEL[np.asarray(train_ids, dtype=np.uint8)]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """RGB image of a train-ID map in the Cityscapes palette."""
    return TRAIN_TO_COLOR[np.asarray(train_ids, dtype=np.uint8)]
