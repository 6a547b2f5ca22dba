"""The model of a sweep on the local replicas of a tf.distribute strategy: R frames per call, one per replica.

The model is opened by `bench.sources.opener.open_checkpoint` (a `.keras` file, a training folder, a `.pth`)
under the strategy's scope, so its weights are mirrored on every replica. With one replica (one GPU or the
CPU) each frame goes through the prediction loop's own per-frame step (`inference.loop.frame_predictor`):
every inference mode, flip, arg-max-only models. With R > 1 (`MirroredStrategy` over the local GPUs, or over
`cpu_replicas` logical CPU devices, which is how a CPU machine runs and tests this path) each call runs
`strategy.run` on a per-replica value holding one frame per replica: whole-image inference, frames of one
size (Cityscapes frames all are); a last call with fewer frames than replicas repeats its last frame and
drops the extra outputs. Across machines, workers do not talk to each other (bench/robustness/sweep.py):
each runs its own local strategy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common.tensorflow_import import import_tensorflow
from data.errors import UserError
from models.inference_modes import InferenceSettings


class ReplicaModel:
    """`predict(frames)` -> train IDs and logits of up to `replicas` uint8 RGB frames at once."""

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        settings: InferenceSettings,
        *,
        cpu_replicas: int | None = None,
        options=None,
    ) -> None:
        tf = import_tensorflow()
        from bench.inference.loop import frame_predictor
        from bench.sources.opener import open_checkpoint
        from bench.training.strategy import split_cpu

        gpus = tf.config.list_physical_devices("GPU")
        replicas = cpu_replicas if cpu_replicas and cpu_replicas > 1 else max(1, len(gpus))
        if replicas > 1 and (settings.mode != "whole" or settings.flip):
            raise UserError(
                f"--mode {settings.mode}{' --flip' if settings.flip else ''} runs on one replica: over "
                f"{replicas} replicas the sweep predicts whole frames (--mode whole, no --flip); for "
                f"other modes use one GPU (CUDA_VISIBLE_DEVICES=0) and no --cpu-replicas"
            )
        if cpu_replicas and cpu_replicas > 1:
            strategy = tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
        elif len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
        else:
            strategy = tf.distribute.get_strategy()
        self.strategy = strategy
        self.replicas = int(strategy.num_replicas_in_sync)
        with strategy.scope():
            self.opened = open_checkpoint(
                checkpoint, precision=settings.precision, fold_bn=settings.fold_bn, options=options
            )
        self.kind = "mirrored" if isinstance(strategy, tf.distribute.MirroredStrategy) else "default"
        if self.replicas == 1:
            self._one = frame_predictor(self.opened, settings)
        else:
            if self.opened.outputs != "logits":
                raise UserError(f"{checkpoint} gives only its arg-max: mirror it over one replica")
            if self.opened.keras is None:
                raise UserError(
                    f"{checkpoint} runs on {self.opened.runtime}, not in TensorFlow: it cannot be mirrored "
                    f"over {self.replicas} replicas; run it without --cpu-replicas (and on one GPU)"
                )
            forward = self.opened.logits_function()
            self._step = tf.function(lambda values: strategy.run(forward, args=(values,)))
        self._tf = tf

    @property
    def sha256(self) -> str | None:
        """Content hash of what was opened (the published file's for a converted `.pth`)."""
        return self.opened.sha256

    @property
    def metadata(self) -> dict[str, Any]:
        return self.opened.metadata

    def predict(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(train IDs (H, W) uint8, logits (H, W, C) float32 or None) of each frame, in order."""
        from bench.inference.loop import back_to_frame
        from data.pipeline import network_input

        if not 0 < len(frames) <= self.replicas:
            raise ValueError(f"predict takes 1 to {self.replicas} frames, not {len(frames)}")
        spec = self.opened.input_spec  # a recipe with an input size: the network sees that, sinks the frame
        inputs = [network_input(frame, spec)[np.newaxis] for frame in frames]
        if self.replicas == 1:
            results = [self._one(inputs[0])]
            return results if spec.size is None else [back_to_frame(*results[0], frames[0].shape[:2], spec)]
        inputs += [inputs[-1]] * (self.replicas - len(inputs))
        values = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: inputs[ctx.replica_id_in_sync_group]
        )
        outputs = self.strategy.experimental_local_results(self._step(values))
        results = []
        for output, frame in zip(outputs[: len(frames)], frames, strict=True):
            logits = np.asarray(self._tf.convert_to_tensor(output))[0]
            if spec.size is not None:
                logits = back_to_frame(None, logits, frame.shape[:2], spec)[1]
            results.append((np.argmax(logits, axis=-1).astype(np.uint8), logits))
        return results

    def describe(self) -> dict[str, Any]:
        """Where the model runs, for the result rows."""
        from bench.common.device import environment

        return {**environment(), "strategy": self.kind, "replicas": self.replicas}
