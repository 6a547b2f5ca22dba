"""Validation during training: score a split with the project's exact evaluator, from arrays.

The model's arg-max is mapped to label IDs and scored against the ground-truth label and instance files by
`bench.evaluation.scoring.score_image`, summed in the split's sample order by `bench.evaluation.Accumulator`:
the numbers `bench evaluate` gives on the same predictions written as PNGs, without writing them.
Prediction is whole-frame (one forward pass per frame at full resolution), `bench predict`'s default mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from bench.evaluation import Accumulator, EvaluationResult
from bench.evaluation.evaluator import score_prediction
from bench.evaluation.gt_cache import AUTO, GTCache, resolve_gt_cache
from data.normalization import IMAGENET_RGB, InputSpec


def logits_function(model) -> Callable:
    """A traced forward pass (B, H, W, 3) -> float32 logits, for a model emitting logits or the dict of
    `aux_head=True` builders."""
    import tensorflow as tf

    def forward(images):
        outputs = model(images, training=False)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs
        return tf.cast(logits, tf.float32)

    return tf.function(forward)


class Validator:
    """Scores a model on one split; build once (the frame list), call after each validation interval."""

    def __init__(
        self,
        dataset: str | os.PathLike | None,
        split: str = "val",
        *,
        input_spec: InputSpec = IMAGENET_RGB,
        limit: int | None = None,
        gt_cache: GTCache | str | os.PathLike | None = AUTO,
    ):
        """`gt_cache`: where the split's decoded GT is kept, so each validation after the first reads no
        GT PNG (`AUTO`: the environment's cache; None: decode every time)."""
        from data.cityscapes import list_samples

        self.gt_cache = resolve_gt_cache(gt_cache)
        self.split = split
        self.input_spec = input_spec
        self.samples = list_samples(dataset, split, require_images=True)[:limit]

    def __call__(self, model) -> EvaluationResult:
        """The evaluation of `model`'s whole-frame predictions on the split (cityscapesScripts' numbers)."""
        from bench.engine.predict import frame_logits
        from data.labels import to_label_ids
        from data.pipeline import eval_dataset

        forward = logits_function(model)
        totals = Accumulator()
        frames = eval_dataset(self.samples, with_labels=False, input_spec=self.input_spec)
        for sample, image in zip(self.samples, frames, strict=True):
            train_ids = np.argmax(frame_logits(forward, image), axis=-1).astype(np.uint8)
            totals.add(
                score_prediction(
                    sample.label_ids,
                    sample.instance_ids,
                    to_label_ids(train_ids),
                    f"{sample.key} (prediction in memory)",
                    gt_cache=self.gt_cache,
                )
            )
        return totals.result()
