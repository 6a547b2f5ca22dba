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

from bench.evaluation import Accumulator, EvaluationResult, read_png, score_image
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
    ):
        from data.cityscapes import list_samples

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
                score_image(
                    read_png(sample.label_ids, "ground truth"),
                    read_png(sample.instance_ids, "instance ground truth"),
                    to_label_ids(train_ids),
                    gt_path=sample.label_ids,
                    inst_path=sample.instance_ids,
                    pred_path=f"{sample.key} (prediction in memory)",
                )
            )
        return totals.result()
