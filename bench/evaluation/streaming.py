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
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.evaluator import score_prediction
from bench.evaluation.gt_cache import AUTO, GTCache, resolve_gt_cache
from bench.evaluation.scoring import PRED_ID_MODES, EvaluationResult, ImageStats
from data.cityscapes import Sample
from data.errors import UserError
from data.labels import TRAIN_TO_LABEL

MAX_PENDING = 4
"""Frames predicted but not yet scored: bounds the arrays held when scoring falls behind the model."""


class StreamingEvaluator:
    """Scores frames as they are predicted, in worker threads (`workers`, default one: the model needs the
    cores); results are summed in the order of `process` whatever the thread count.

    A sink of the prediction loop (bench/engine/sinks.py): `process(sample, train_ids, logits)` takes the
    frame's prediction as a (H, W) uint8 array of train IDs, mapped to label IDs here (with `ids="label"`
    the array is label IDs already); `logits` are not needed. Errors of a frame (bad GT, wrong size)
    surface at the next call.
    `seconds` of the result is the scoring work itself (GT decoding and counting), overlapped with the model.
    `gt_cache` keeps the decoded GT between evaluations (`AUTO`: the environment's cache; None: none).
    """

    def __init__(
        self,
        *,
        ids: str = "train",
        workers: int = 1,
        max_pending: int = MAX_PENDING,
        gt_cache: GTCache | str | os.PathLike | None = AUTO,
    ) -> None:
        if ids not in PRED_ID_MODES:
            raise UserError(f"ids must be one of {PRED_ID_MODES}, not {ids!r}")
        if workers < 1:
            raise UserError(f"scoring needs at least 1 worker thread, not {workers}")
        self.ids = ids
        self.gt_cache = resolve_gt_cache(gt_cache)
        self.max_pending = max(int(workers), int(max_pending))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score")
        self._pending: collections.deque[Future] = collections.deque()
        self.reset()

    def reset(self) -> None:
        """Forget every frame processed so far (frames still being scored are waited for and dropped)."""
        for future in self._pending:
            future.cancel()
        for future in self._pending:
            if not future.cancelled():
                future.exception()  # wait; its outcome no longer matters
        self._pending.clear()
        self._totals = Accumulator()
        self._busy = 0.0

    def process(self, sample: Sample, prediction: np.ndarray, logits: np.ndarray | None = None) -> None:
        """Queue one frame for scoring against `sample`'s ground truth."""
        name = f"prediction of {sample.key}"
        value_map = TRAIN_TO_LABEL if self.ids == "train" else None  # applied in the worker thread
        self._pending.append(
            self._pool.submit(
                _score, sample.label_ids, sample.instance_ids, prediction, name, self.gt_cache, value_map
            )
        )
        while len(self._pending) > self.max_pending:
            self._collect()

    def evaluate(self) -> EvaluationResult:
        """The scores of every frame processed since `reset` (waits for the frames still being scored)."""
        while self._pending:
            self._collect()
        return dataclasses.replace(self._totals.result(), seconds=self._busy)

    def totals(self) -> Accumulator:
        """The sums of every frame processed since `reset` (waits for the frames still being scored): what
        a caller saves to resume or to add to other parts' sums (bench robustness)."""
        while self._pending:
            self._collect()
        return self._totals

    def close(self) -> None:
        """Stop the worker thread (pending frames are dropped)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> StreamingEvaluator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _collect(self) -> None:
        future = self._pending.popleft()
        stats, seconds = future.result()  # re-raises a frame's UserError here, in the caller's thread
        self._totals.add(stats)
        self._busy += seconds


def _score(gt_labels, gt_instances, prediction, name, gt_cache, value_map) -> tuple[ImageStats, float]:
    began = time.perf_counter()
    stats = score_prediction(
        gt_labels, gt_instances, prediction, name, "label", gt_cache, value_map=value_map
    )
    return stats, time.perf_counter() - began
