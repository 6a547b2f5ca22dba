"""Running totals of an evaluation: feed per-image statistics one by one, read the scores at any time.

The detectron2 evaluator pattern (reset / process / evaluate) on our exact maths: whoever already holds the
arrays (the file evaluator, the prediction loop, validation inside training) scores them with
`scoring.score_image` and adds the `ImageStats` here, so predictions never need a PNG round trip. Totals are
summed in the order images are added: add them in the sample order of the split for cityscapesScripts'
exact iIoU sums.
"""

from __future__ import annotations

import time

import numpy as np

from bench.evaluation.frames import FrameScores
from bench.evaluation.scores import EvaluationResult, InstanceTotals, category_scores, class_scores
from bench.evaluation.scoring import PRED_ID_MODES, VALID_IDS, VOID_LOOKALIKE_IDS, ImageStats
from data.errors import UserError
from data.labels import NUM_LABEL_IDS


class Accumulator:
    """Confusion matrix and weighted instance sums over the images added so far.

    `pred_ids` says what the scored predictions were written as: a label-ID evaluation whose pixels sit
    mostly on void ids warns that the files look like train IDs. `result()` may be called repeatedly.
    """

    def __init__(self, *, pred_ids: str = "label", started: float | None = None, keep_frames: bool = True):
        if pred_ids not in PRED_ID_MODES:
            raise UserError(f"pred_ids must be one of {PRED_ID_MODES}, not {pred_ids!r}")
        self.pred_ids = pred_ids
        self.keep_frames = keep_frames  # off: no per-frame scores (what `bench perf eval` times it against)
        self.reset(started)

    def reset(self, started: float | None = None) -> None:
        """Forget every image added; the clock of `result().seconds` starts at `started` (default: now)."""
        self.confusion = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64)
        self.instances = InstanceTotals()
        self.n_images = 0
        self.frame_keys: list[str] = []
        self.frame_confusions: list[np.ndarray] = []
        self.started = time.perf_counter() if started is None else started

    def add(self, stats: ImageStats, key: str | None = None) -> None:
        """Add one image's statistics (from `scoring.score_image`); `key` names the frame in the per-frame
        scores (default: its position). The frame's matrix is kept (a copy: 9 kB, not the scratch array)."""
        self.confusion += stats.confusion
        self.instances.add(stats)
        if self.keep_frames:
            self.frame_keys.append(key if key is not None else f"frame{self.n_images:05d}")
            self.frame_confusions.append(np.array(stats.confusion, dtype=np.int64))
        self.n_images += 1

    def frames(self) -> FrameScores | None:
        """Per-frame scores of the images added (None when the totals were restored without them)."""
        if not self.keep_frames or len(self.frame_confusions) != self.n_images:
            return None
        stack = (
            np.stack(self.frame_confusions)
            if self.frame_confusions
            else np.zeros((0, NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64)
        )
        return FrameScores(list(self.frame_keys), stack)

    def to_sums(self) -> dict:
        """The exact sums as JSON values (what a resumable sweep writes per unit; `from_sums` reads it),
        with each frame's confusion matrix where they are kept, sparse: `frames` = {"keys": [...],
        "index": [[flat index of each nonzero cell], ...], "count": [[its count], ...]} (a frame's matrix
        has a few dozen of its 34 x 34 cells set: about 1 kB a frame instead of 9)."""
        sums = {
            "n_images": self.n_images,
            "confusion": self.confusion.tolist(),
            "instance_classes": self.instances.classes,
            "instance_categories": self.instances.categories,
        }
        if self.keep_frames and len(self.frame_confusions) == self.n_images:
            flat = [m.ravel() for m in self.frame_confusions]
            index = [np.flatnonzero(m) for m in flat]
            sums["frames"] = {
                "keys": list(self.frame_keys),
                "index": [i.tolist() for i in index],
                "count": [m[i].tolist() for m, i in zip(flat, index, strict=True)],
            }
        return sums

    @classmethod
    def from_sums(cls, data: dict, *, pred_ids: str = "label") -> Accumulator:
        """The totals `to_sums` wrote, with their per-frame matrices where it wrote them (a file of an older
        version has none: `frames()` is None); KeyError, TypeError or ValueError when `data` holds no such
        sums, for the caller to name its file."""
        totals = cls(pred_ids=pred_ids)
        confusion = np.asarray(data["confusion"], dtype=np.int64)
        if confusion.shape != (NUM_LABEL_IDS, NUM_LABEL_IDS):
            raise ValueError(f"its confusion matrix is {confusion.shape}")
        totals.confusion = confusion
        totals.instances = InstanceTotals(
            classes={k: [float(a), float(b)] for k, (a, b) in data["instance_classes"].items()},
            categories={k: [float(a), float(b)] for k, (a, b) in data["instance_categories"].items()},
        )
        totals.n_images = int(data["n_images"])
        if data.get("frames") is not None:
            totals.frame_keys, totals.frame_confusions = _dense_frames(data["frames"], totals)
        return totals

    def result(self) -> EvaluationResult:
        """The scores of the images added so far (cityscapesScripts' definitions)."""
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
            time.perf_counter() - self.started,
            [warning] if warning else [],
            frames=self.frames(),
        )


def _dense_frames(frames: dict, totals: Accumulator) -> tuple[list[str], list[np.ndarray]]:
    """`to_sums`' sparse per-frame matrices as dense ones, checked: one per image, adding up to the total."""
    keys, index, counts = list(frames["keys"]), frames["index"], frames["count"]
    if not len(keys) == len(index) == len(counts) == totals.n_images:
        raise ValueError(f"it holds {len(keys)} frames' matrices for {totals.n_images} images")
    cells = NUM_LABEL_IDS * NUM_LABEL_IDS
    matrices = []
    for at, values in zip(index, counts, strict=True):
        at, values = np.asarray(at, dtype=np.int64), np.asarray(values, dtype=np.int64)
        if at.shape != values.shape or at.ndim != 1 or ((at < 0) | (at >= cells)).any() or (values < 0).any():
            raise ValueError("a frame's matrix is malformed")
        flat = np.zeros(cells, dtype=np.int64)
        np.add.at(flat, at, values)
        matrices.append(flat.reshape(NUM_LABEL_IDS, NUM_LABEL_IDS))
    if matrices and not np.array_equal(np.sum(matrices, axis=0), totals.confusion):
        raise ValueError("its frames' matrices do not add up to its confusion matrix")
    return [str(k) for k in keys], matrices


def _ranges(ids) -> str:
    """`0-6, 9, 10, 14-16, 18`: sorted ids with runs of three or more as ranges."""
    ids, parts, i = sorted(int(x) for x in ids), [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts += [f"{ids[i]}-{ids[j]}"] if j - i >= 2 else [str(x) for x in ids[i : j + 1]]
        i = j + 1
    return ", ".join(parts)


def train_id_warning(conf: np.ndarray) -> str | None:
    """Train-ID files read as label IDs put most valid pixels on void ids 0..18: say so loudly."""
    valid = int(conf[VALID_IDS].sum())
    on_void = int(conf[np.ix_(VALID_IDS, VOID_LOOKALIKE_IDS)].sum())
    if valid and on_void / valid > 0.25:
        return (
            f"{100.0 * on_void / valid:.0f}% of the evaluated pixels are predicted as label ids that "
            f"Cityscapes ignores ({_ranges(VOID_LOOKALIKE_IDS)}, all below 19): these predictions look "
            f"like train IDs (0..18); if so, pass --pred-ids train"
        )
    return None
