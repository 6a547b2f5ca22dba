"""Validation during training: score a split with the project's exact evaluator, from arrays.

The prediction loop (bench/inference/loop.py) runs the model in memory whole-frame (one forward pass per frame
at full resolution, `bench predict`'s default mode) into a `StreamingEvaluator`: the numbers
`bench evaluate` gives on the same predictions written as PNGs, without writing them.
"""

from __future__ import annotations

import os

from bench.evaluation import EvaluationResult
from data.normalization import IMAGENET_RGB, InputSpec


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
        """The evaluation of `model`'s whole-frame predictions on the split (cityscapesScripts' numbers);
        `model` is the training model (logits or the dict of `aux_head=True` builders)."""
        from bench.evaluation.streaming import StreamingEvaluator
        from bench.inference.loop import predict_frames
        from bench.sources.opener import OpenedModel

        opened = OpenedModel(model, {"input": self.input_spec.to_dict()}, jit=False)
        with StreamingEvaluator() as evaluator:
            (result,) = predict_frames(opened, self.samples, sinks=[evaluator], progress=False).results
        return result
