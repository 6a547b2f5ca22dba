"""A frame's ground truth as runs: what scoring needs of it, a few ten thousand values instead of two images.

Scoring counts the runs of equal (instance, gt, pred) pixels in raster order (`scoring.score_runs`). The
ground truth's part of that does not change between evaluations: its runs of equal (instance, label) pixels
(start, label id, instance id), typically 10-40 thousand of them on a 1024x2048 frame (about 7 bytes each,
against 6 MB decoded). A prediction is scored against them by splitting those runs where the prediction
changes: the result is exactly the runs `score_image` finds from the three arrays, so the sums are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.scoring import ImageStats, _runs, check_ground_truth, score_runs


@dataclass(frozen=True)
class GroundTruthRuns:
    """Runs of equal (instance id, label id) pixels of one frame, in raster order."""

    shape: tuple[int, int]  # (H, W) of the frame
    starts: np.ndarray  # (n,) intp flat index of each run's first pixel; starts[0] == 0, ascending
    labels: np.ndarray  # (n,) uint8 label id of each run
    instances: np.ndarray  # (n,) uint16 instance id of each run (label id, or label id * 1000 + k)

    @classmethod
    def from_arrays(
        cls,
        labels: np.ndarray,
        instances: np.ndarray,
        *,
        gt_path: Path | str = "ground truth",
        inst_path: Path | str = "instances",
    ) -> GroundTruthRuns:
        """The runs of decoded GT arrays (checked as `score_image` checks them; paths name them in errors)."""
        check_ground_truth(labels, instances, gt_path=gt_path, inst_path=inst_path)
        starts, _ = _runs(instances, labels)
        return cls(
            (int(labels.shape[0]), int(labels.shape[1])),
            starts,
            labels.ravel()[starts],
            instances.ravel()[starts].astype(np.uint16),
        )

    @property
    def n_pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The (labels, instances) images back (for tests and for whoever needs the full arrays)."""
        lengths = np.diff(self.starts, append=self.n_pixels)
        return (
            np.repeat(self.labels, lengths).reshape(self.shape),
            np.repeat(self.instances, lengths).reshape(self.shape),
        )

    def score(
        self,
        pred_label_ids: np.ndarray,
        *,
        gt_path: Path | str = "ground truth",
        inst_path: Path | str = "instances",
        pred_path: Path | str = "prediction",
        pred_ids: str = "label",
        value_map: np.ndarray | None = None,
    ) -> ImageStats:
        """`score_image(labels, instances, pred_label_ids)` without the GT images (same shape required).

        `value_map` (a uint8 lookup table, e.g. train ID -> label ID) is applied to the prediction's values
        run by run, a few ten thousand lookups instead of a pass over the image: a run of equal values maps
        to one value, so the sums are those of the mapped image."""
        pred = pred_label_ids.ravel()
        n = pred.size
        # a run starts where the prediction changes or where a GT run starts
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(pred[1:], pred[:-1], out=change[1:])
        change[self.starts] = True
        starts = np.flatnonzero(change)
        # the GT run each of them lies in: count the GT starts among them (cheaper than a searchsorted)
        gt_start = np.zeros(n, dtype=bool)
        gt_start[self.starts] = True
        which = np.cumsum(gt_start[starts])
        which -= 1
        return score_runs(
            np.diff(starts, append=n),
            self.labels[which],
            self.instances[which],
            pred[starts] if value_map is None else value_map[pred[starts].astype(np.uint8)],
            gt_path=gt_path,
            inst_path=inst_path,
            pred_path=pred_path,
            pred_ids=pred_ids,
        )
