"""The scores of one unit, as a sink of the prediction loop (reset / process / evaluate).

Each frame's train IDs become label IDs (`data.labels.to_label_ids`, as `bench predict` writes them) and are
scored against the frame's ground truth by the evaluator's own `score_prediction`, in a worker thread while
the model computes the next frame; the `Accumulator` adds them in the order frames were processed. The
result is the `EvaluationResult` that `bench evaluate` computes for the same predictions, and `totals` the
sums a unit file stores.
"""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.evaluator import score_prediction
from bench.evaluation.scoring import EvaluationResult
from data.cityscapes import Sample
from data.labels import to_label_ids

MAX_PENDING = 4
"""Frames predicted but not yet scored (bounds the arrays held when scoring falls behind)."""


class UnitScores:
    """A sink: `process(sample, train_ids, logits)` per frame, `evaluate()` for the scores so far."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="robustness-score")
        self._pending: collections.deque[Future] = collections.deque()
        self.reset()

    def reset(self) -> None:
        for future in self._pending:
            future.cancel()
        for future in self._pending:
            if not future.cancelled():
                future.exception()
        self._pending.clear()
        self.totals = Accumulator()

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None = None) -> None:
        label_ids = to_label_ids(train_ids)
        name = f"prediction of {sample.key}"
        self._pending.append(
            self._pool.submit(score_prediction, sample.label_ids, sample.instance_ids, label_ids, name)
        )
        while len(self._pending) > MAX_PENDING:
            self._collect()

    def evaluate(self) -> EvaluationResult:
        while self._pending:
            self._collect()
        return self.totals.result()

    def close(self) -> None:
        self.reset()
        self._pool.shutdown(wait=True)

    def _collect(self) -> None:
        self.totals.add(self._pending.popleft().result())  # a frame's UserError surfaces here
