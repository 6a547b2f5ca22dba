"""Scoring inside the prediction loop: each frame is scored from the array just predicted, no PNG round trip.

detectron2's evaluator pattern (`reset` / `process` / `evaluate`): the prediction loop hands every frame's
label-ID array to `process`, a worker thread decodes that frame's ground truth and scores it while the model
computes the next frame, and `evaluate` returns the same `EvaluationResult` that `bench evaluate` computes
from the written files (the same `score_image`, summed in the same frame order by the same `Accumulator`).
No TensorFlow here either: the loop that feeds it owns the model.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import heapq
import os

import numpy as np

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.evaluator import score_prediction
from bench.evaluation.frames import FrameScores
from bench.evaluation.gt_cache import AUTO, GTCache, resolve_gt_cache
from bench.evaluation.scores import EvaluationResult
from bench.evaluation.scoring import PRED_ID_MODES
from bench.evaluation.threaded import ThreadedSink
from bench.evaluation.train_ids import score_layout_prediction, without_instances
from data.cityscapes import Sample
from data.errors import UserError
from data.labels import TRAIN_TO_LABEL
from data.layouts import Frame

MAX_PENDING = 4
"""Frames predicted but not yet scored: bounds the arrays held when scoring falls behind the model."""


class StreamingEvaluator(ThreadedSink):
    """Scores frames as they are predicted, in worker threads (`workers`, default one: the model needs the
    cores); results are summed in the order of `process` whatever the thread count.

    A sink of the prediction loop (bench/inference/sinks.py): `process(sample, train_ids, logits)` takes the
    frame's prediction as a (H, W) uint8 array of train IDs, mapped to label IDs here (with `ids="label"`
    the array is label IDs already); `logits` are not needed. Errors of a frame (bad GT, wrong size)
    surface at the next call.
    `seconds` of the result is the scoring work itself (GT decoding and counting), overlapped with the model.
    `gt_cache` keeps the decoded GT between evaluations (`AUTO`: the environment's cache; None: none).
    """

    needs_logits = False

    def __init__(
        self,
        *,
        ids: str = "train",
        workers: int = 1,
        max_pending: int = MAX_PENDING,
        gt_cache: GTCache | str | os.PathLike | None = AUTO,
        keep_worst: int = 0,
    ) -> None:
        if ids not in PRED_ID_MODES:
            raise UserError(f"ids must be one of {PRED_ID_MODES}, not {ids!r}")
        if workers < 1:
            raise UserError(f"scoring needs at least 1 worker thread, not {workers}")
        super().__init__(max_pending=max_pending, name="score", workers=workers)
        self.ids = ids
        self.keep_worst = max(0, int(keep_worst))
        self.gt_cache = resolve_gt_cache(gt_cache)
        self.reset()

    def reset(self) -> None:
        """Forget every frame processed so far (frames still being scored are waited for and dropped)."""
        self._clear()
        self._totals = Accumulator()
        self._no_instances = False  # a frame of a layout without instance IDs was scored: no iIoU
        self._keys: collections.deque[str] = collections.deque()  # of the frames queued, in order
        self._worst: list[tuple[float, int, str, np.ndarray]] = []  # max-heap on mIoU (negated)

    def process(self, sample: Sample, prediction: np.ndarray, logits: np.ndarray | None = None) -> None:
        """Queue one frame for scoring against `sample`'s ground truth (a Cityscapes `Sample`, or a
        `data.layouts.Frame` of ACDC, BDD100K, ...: its labels in their own encoding, no GT cache)."""
        name = f"prediction of {sample.key}"
        if isinstance(sample, Frame):
            self._no_instances |= sample.instances is None
            score = functools.partial(score_layout_prediction, sample, prediction, name, self.ids)
        else:
            value_map = TRAIN_TO_LABEL if self.ids == "train" else None  # applied in the worker thread
            score = functools.partial(
                score_prediction,
                sample.label_ids,
                sample.instance_ids,
                prediction,
                name,
                "label",
                self.gt_cache,
                value_map=value_map,
            )
        self._keys.append(sample.key)  # before _submit: it may fold earlier frames, which pop theirs
        if self.keep_worst:  # the array comes back with its score; the worst few are kept
            self._submit(_with_array, prediction, score)
            return
        self._submit(score)

    def evaluate(self) -> EvaluationResult:
        """The scores of every frame processed since `reset` (waits for the frames still being scored)."""
        self._drain()
        result = dataclasses.replace(self._totals.result(), seconds=self._busy)
        return without_instances(result) if self._no_instances else result

    def totals(self) -> Accumulator:
        """The sums of every frame processed since `reset` (waits for the frames still being scored): what
        a caller saves to resume or to add to other parts' sums (bench robustness)."""
        self._drain()
        return self._totals

    def worst_predictions(self) -> dict[str, np.ndarray]:
        """The `keep_worst` predictions (as given to `process`) of lowest per-frame mIoU, by frame key."""
        self._drain()
        return {key: array for _, _, key, array in sorted(self._worst, key=lambda item: -item[0])}

    def _add(self, value) -> None:
        array = None
        if self.keep_worst:
            value, array = value
        key = self._keys.popleft()
        self._totals.add(value, key)
        if array is not None:
            miou = float(FrameScores([key], value.confusion[None]).miou[0])
            entry = (-(miou if miou == miou else 2.0), self._totals.n_images, key, array)
            if len(self._worst) < self.keep_worst:
                heapq.heappush(self._worst, entry)
            elif entry[0] > self._worst[0][0]:
                heapq.heapreplace(self._worst, entry)


def _with_array(array: np.ndarray, fn, *args, **kwargs):
    return fn(*args, **kwargs), array
