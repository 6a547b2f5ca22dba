"""Two models over the same frames, through the one prediction loop (bench/inference/loop.py), each scored by
the exact streaming evaluator (bench/evaluation/streaming.py), compared frame by frame.

Frames go in chunks that fit a memory budget: model A predicts a chunk (its arg-max and logits kept), model
B predicts the same chunk and each of its frames is compared with A's, then the next chunk. The scores of
both run over every chunk (the evaluators are reset once, not per chunk); images/s are each model's own
(the loop's figures, summed over chunks: B is never timed while A's outputs are compared).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUM_TRAIN_IDS = 19
MEMORY_BUDGET = 2 * 2**30
"""Bytes of A's kept outputs per chunk: 12 full 1024x2048 frames of 20-channel float32 logits."""


class Continuing:
    """A sink whose `reset` happens once: the loop resets its sinks every call, the scores span all chunks."""

    def __init__(self, sink) -> None:
        self.sink, self._started = sink, False

    def reset(self) -> None:
        if not self._started:
            self.sink.reset()
            self._started = True

    def process(self, sample, train_ids, logits) -> None:
        self.sink.process(sample, train_ids, logits)

    def evaluate(self):
        return None


class Kept:
    """Model A's outputs of one chunk, by frame key."""

    def __init__(self) -> None:
        self.frames: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def reset(self) -> None:
        self.frames.clear()

    def process(self, sample, train_ids, logits) -> None:
        kept = None if logits is None else np.asarray(logits, np.float32)[..., :NUM_TRAIN_IDS].copy()
        self.frames[sample.key] = (np.asarray(train_ids).copy(), kept)

    def evaluate(self):
        return None


@dataclass
class Agreement:
    """Pixel agreement of the arg-maxes and |delta logits| over channels 0..18, summed over frames."""

    pixels: int = 0
    agreeing: int = 0
    delta_sum: float = 0.0
    delta_count: int = 0
    delta_max: float = 0.0
    with_logits: bool = True
    per_frame: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, a_ids, a_logits, b_ids, b_logits) -> None:
        if a_ids.shape != b_ids.shape:
            raise ValueError(
                f"{key}: the models' predictions differ in size, {a_ids.shape} and {b_ids.shape}"
            )
        same = int(np.count_nonzero(a_ids == b_ids))
        self.pixels += a_ids.size
        self.agreeing += same
        frame = {"frame": key, "agreement": 100.0 * same / a_ids.size}
        if a_logits is None or b_logits is None:
            self.with_logits = False
        else:
            delta = np.abs(
                a_logits.astype(np.float64) - np.asarray(b_logits, np.float64)[..., :NUM_TRAIN_IDS]
            )
            self.delta_sum += float(delta.sum())
            self.delta_count += delta.size
            self.delta_max = max(self.delta_max, float(delta.max()))
            frame["max_delta_logits"] = float(delta.max())
        self.per_frame.append(frame)

    @property
    def percent(self) -> float:
        return 100.0 * self.agreeing / self.pixels if self.pixels else float("nan")

    @property
    def max_delta(self) -> float | None:
        return self.delta_max if self.with_logits and self.delta_count else None

    @property
    def mean_delta(self) -> float | None:
        return self.delta_sum / self.delta_count if self.with_logits and self.delta_count else None


class Compared:
    """Model B's sink: each frame against A's kept outputs of the same frame."""

    def __init__(self, kept: Kept, agreement: Agreement) -> None:
        self.kept, self.agreement = kept, agreement

    def reset(self) -> None:
        pass

    def process(self, sample, train_ids, logits) -> None:
        a_ids, a_logits = self.kept.frames.pop(sample.key)
        self.agreement.add(sample.key, a_ids, a_logits, np.asarray(train_ids), logits)

    def evaluate(self):
        return None


@dataclass(frozen=True)
class PairResult:
    agreement: Agreement
    scores: tuple[Any, Any]  # EvaluationResult of A and of B
    stats: tuple[dict[str, Any], dict[str, Any]]  # the loop's figures of A and B (images/s over all chunks)


def chunk_size(samples: Sequence, budget: int = MEMORY_BUDGET) -> int:
    """Frames per chunk: A's logits (20 channels at most, float32) and arg-max of that many fit `budget`."""
    from data.pipeline import frame_size

    height, width = frame_size(samples[0].image)
    return max(1, budget // (height * width * (NUM_TRAIN_IDS * 4 + 1)))


def predict_pair(a, b, samples: Sequence, settings, *, progress: bool = True, budget: int = MEMORY_BUDGET):
    """`a` and `b` (OpenedModels) over `samples`: a `PairResult`."""
    from bench.evaluation.streaming import StreamingEvaluator
    from bench.inference.loop import predict_frames

    agreement = Agreement()
    kept = Kept()
    step = chunk_size(samples, budget)
    seconds = [0.0, 0.0]
    stats: list[dict[str, Any]] = [{}, {}]
    with StreamingEvaluator() as score_a, StreamingEvaluator() as score_b:
        keep_a, keep_b = Continuing(score_a), Continuing(score_b)
        for start in range(0, len(samples), step):
            chunk = samples[start : start + step]
            for i, (model, sinks) in enumerate(
                ((a, (keep_a, kept)), (b, (keep_b, Compared(kept, agreement))))
            ):
                done = predict_frames(model, chunk, settings, sinks, progress=progress)
                seconds[i] += done.stats["seconds"]
                stats[i] = done.stats
        results = (score_a.evaluate(), score_b.evaluate())
    for i in (0, 1):
        stats[i] = {
            **stats[i],
            "n_images": len(samples),
            "seconds": round(seconds[i], 3),
            "images_per_s": round(len(samples) / seconds[i], 3) if seconds[i] else 0.0,
        }
    return PairResult(agreement, results, (stats[0], stats[1]))
