"""The model of a sweep on the local replicas of a tf.distribute strategy: R frames per call, one per replica.

`MirroredStrategy` over the local GPUs (or `cpu_replicas` logical CPU devices, which is how a CPU machine
runs and tests this path), the default strategy with one device. The checkpoint is loaded under the
strategy's scope (weights mirrored on every replica) by `bench.engine.predict.load_checkpoint`, and each
call runs `strategy.run` on a per-replica value holding one normalised frame per replica: whole-image
inference, frames of a call of one size (Cityscapes frames all are). A last call with fewer frames than
replicas repeats its last frame and drops the extra outputs. Across machines, workers do not talk to each
other at all (see bench/robustness/sweep.py): every worker runs its own local strategy.

Integration point: when the prediction loop's redesign (`open_checkpoint` + `predict_frames`) lands, this
module's loading and forward pass are what it replaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.engine.tensorflow_import import import_tensorflow


class ReplicaModel:
    """`predict(frames)` -> train IDs and logits of up to `replicas` uint8 RGB frames at once."""

    def __init__(
        self,
        checkpoint,
        *,
        cpu_replicas: int | None = None,
        fold_bn: bool = True,
        precision: str = "fp32",
    ) -> None:
        tf = import_tensorflow()
        from bench.engine.predict import load_checkpoint
        from bench.engine.strategy import split_cpu
        from data.normalization import InputSpec

        gpus = tf.config.list_physical_devices("GPU")
        if cpu_replicas and cpu_replicas > 1:
            strategy = tf.distribute.MirroredStrategy(split_cpu(cpu_replicas))
        elif len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
        else:
            strategy = tf.distribute.get_strategy()
        self.strategy = strategy
        self.replicas = int(strategy.num_replicas_in_sync)
        with strategy.scope():
            model, self.metadata = load_checkpoint(checkpoint, fold_bn=fold_bn, precision=precision)
        self.spec = InputSpec.from_metadata(self.metadata)
        self.kind = (
            "mirrored"
            if self.replicas > 1 or isinstance(strategy, tf.distribute.MirroredStrategy)
            else "default"
        )
        accelerated = bool(gpus)
        forward = tf.function(
            lambda x: tf.cast(model(x, training=False), tf.float32), jit_compile=accelerated
        )
        self._step = tf.function(lambda values: strategy.run(forward, args=(values,)))
        self._tf = tf

    def predict(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train IDs (H, W) uint8, logits (H, W, C) float32) of each frame, in order."""
        from data.pipeline import normalize

        tf = self._tf
        if not 0 < len(frames) <= self.replicas:
            raise ValueError(f"predict takes 1 to {self.replicas} frames, not {len(frames)}")
        inputs = [normalize(frame[np.newaxis], self.spec) for frame in frames]
        inputs += [inputs[-1]] * (self.replicas - len(inputs))
        with self.strategy.scope():
            values = self.strategy.experimental_distribute_values_from_function(
                lambda ctx: inputs[ctx.replica_id_in_sync_group]
            )
        outputs = self.strategy.experimental_local_results(self._step(values))
        results = []
        for output in outputs[: len(frames)]:
            logits = np.asarray(tf.convert_to_tensor(output))[0]
            results.append((np.argmax(logits, axis=-1).astype(np.uint8), logits))
        return results

    def describe(self) -> dict[str, Any]:
        """Where the model runs, for the result rows."""
        from bench.engine.device import environment

        return {**environment(), "strategy": self.kind, "replicas": self.replicas}
