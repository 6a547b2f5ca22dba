"""tf.distribute for `bench train`: which strategy, which replicas this process drives, who is the chief.

- `default`: one replica on the default device (TensorFlow's default strategy).
- `mirrored`: `MirroredStrategy`, one replica per local GPU (or per logical CPU device with `cpu_replicas`,
  which lets a CPU machine run and test the data-parallel path).
- `multiworker`: `MultiWorkerMirroredStrategy`, configured by the standard `TF_CONFIG` variable (cluster
  and this process's task); each worker mirrors over its local GPUs.
- `auto`: multiworker when `TF_CONFIG` is set, mirrored with two or more GPUs (or `cpu_replicas` >= 2),
  else default.

The chief is the task `chief`, else `worker` 0 (TensorFlow's convention); it alone writes into the
training folder. Both logical CPU devices and multi-worker collectives must be set up before TensorFlow
starts its runtime, so the strategy is made first thing in a fresh process (`bench train` does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench.training.cluster import STRATEGIES, choose, peers_of, read_tf_config
from data.errors import UserError

__all__ = [
    "STRATEGIES",
    "Distribution",
    "check_same_settings",
    "chief_of",
    "choose",
    "make_distribution",
    "read_tf_config",
]


@dataclass(frozen=True)
class Distribution:
    """A strategy and this process's place in it."""

    strategy: Any  # tf.distribute.Strategy
    kind: str  # "default" | "mirrored" | "multiworker"
    is_chief: bool
    worker: int  # index of this worker among `workers`
    workers: int
    local_replicas: tuple[int, ...]  # global ids of the replicas this process drives, in local order

    @property
    def replicas(self) -> int:
        """Replicas in sync over all workers: the global batch is split over this many."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self) -> str:
        where = f", worker {self.worker} of {self.workers}" if self.kind == "multiworker" else ""
        chief = " (chief)" if self.kind == "multiworker" and self.is_chief else ""
        return f"{self.kind} strategy, {self.replicas} replica(s){where}{chief}"


def chief_of(config: dict[str, Any] | None) -> bool:
    """TensorFlow's convention: the `chief` task, else `worker` 0 when the cluster has no chief."""
    if not config:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in config["cluster"]


def split_cpu(count: int) -> list[str]:
    """Names of `count` logical CPU devices, creating them if TensorFlow has not started yet."""
    import tensorflow as tf

    if count < 1:
        raise UserError(f"--cpu-replicas {count} must be at least 1")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        if len(tf.config.get_logical_device_configuration(cpu) or [None]) != count:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
            )
    except RuntimeError:
        pass  # TensorFlow already started: use what it has, checked below
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < count:
        raise UserError(
            f"--cpu-replicas {count}: TensorFlow already started with {len(devices)} CPU device(s); the "
            f"split must happen before any TensorFlow work: run training in a fresh process"
        )
    return devices[:count]


def make_distribution(
    kind: str = "auto", *, cpu_replicas: int | None = None, worker_timeout: float = 300.0
) -> Distribution:
    """Create the strategy (first thing in the process for multiworker or `cpu_replicas`); a multi-worker
    one waits for every peer of `TF_CONFIG`, for at most `worker_timeout` seconds (training/peers.py)."""
    import tensorflow as tf

    tf_config = read_tf_config()
    if tf_config is None:
        os.environ.pop("TF_CONFIG", None)  # a blank one: TensorFlow's own resolver would fail to parse it
    gpus = len(tf.config.list_physical_devices("GPU"))
    kind = choose(kind, tf_config=tf_config, gpus=gpus, cpu_replicas=cpu_replicas)
    if kind == "default":
        strategy = tf.distribute.get_strategy()
    elif kind == "mirrored":
        devices = split_cpu(cpu_replicas) if cpu_replicas else None
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        from bench.training.peers import barrier, waiting_for

        with waiting_for(peers_of(tf_config), worker_timeout):
            try:
                strategy = tf.distribute.MultiWorkerMirroredStrategy()
            except (RuntimeError, ValueError) as exc:
                raise UserError(
                    f"cannot start the multi-worker strategy ({exc}): it must be created before any other "
                    f"TensorFlow work, in a fresh process"
                ) from exc
            barrier(strategy)
    ids = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(ctx.replica_id_in_sync_group)
    )
    local = tuple(int(v) for v in strategy.experimental_local_results(ids))
    # Workers drive equally many replicas, numbered worker by worker (the chief's first).
    workers = int(strategy.num_replicas_in_sync) // len(local)
    chief = chief_of(tf_config) if kind == "multiworker" else True
    return Distribution(strategy, kind, chief, local[0] // len(local), workers, local)


def check_same_settings(dist: Distribution, settings: dict[str, tuple[float, ...]]) -> None:
    """Refuse a multi-worker job whose workers were started with different `settings` (option -> its
    values, e.g. {"--batch": (8,), "--crop": (512, 1024)}): each worker would train its own recipe and the
    all-reduce would mix them silently. Compared through the collective itself (one all-reduce of a table
    with a row per replica, each filling its own), so every worker sees every worker's values and all of
    them stop with the same error naming each differing option (exit 2), before anything is written."""
    if dist.kind != "multiworker":
        return
    import tensorflow as tf

    names = list(settings)
    flat = tf.constant([float(v) for name in names for v in settings[name]], tf.float64)
    count = int(dist.strategy.num_replicas_in_sync)

    def own_row():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.one_hot(replica, count, dtype=tf.float64)[:, None] * flat[None, :]

    table = dist.strategy.reduce(tf.distribute.ReduceOp.SUM, dist.strategy.run(own_row), axis=None)
    per_worker = table.numpy()[:: len(dist.local_replicas)]  # each worker's first replica
    differing, at = [], 0
    for name in names:
        width = len(settings[name])
        values = [tuple(row[at : at + width]) for row in per_worker]
        at += width
        if len(set(values)) > 1:
            shown = ", ".join(f"{_shown(v)} on worker {w}" for w, v in enumerate(values))
            differing.append(f"{name} ({shown})")
    if differing:
        raise UserError(
            f"the workers of this job were started with different settings: {'; '.join(differing)}; this "
            f"is worker {dist.worker}: start every worker with the same "
            f"{', '.join(d.split(' ', 1)[0] for d in differing)}"
        )


def _shown(values: tuple[float, ...]) -> str:
    return "x".join(f"{v:g}" if v != int(v) else str(int(v)) for v in values)


def synchronize_batch_norm(model) -> int:
    """Make every BatchNormalization layer of `model` normalise with the global batch's statistics (SyncBN).

    Keras's own `synchronized=True` computes the variance in one pass, E[x^2] - E[x]^2, which cancels
    catastrophically where the mean dwarfs the spread (PSPNet's 1x1 pyramid bin: one pooled value per image,
    so a handful of values per channel): a two-replica run then drifts from one process within a few steps.
    The layers here get `sync_moments` instead: the global mean, then the global mean of squared deviations
    from it, as `tf.nn.moments` does in one process. Switching a built model needs no builder option;
    returns how many layers were switched.
    """
    import types

    import keras

    count = 0
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            if not hasattr(layer, "_moments"):
                raise RuntimeError(
                    f"keras {keras.__version__}: BatchNormalization has no _moments to replace"
                )
            layer.synchronized = True  # what the layer's config says; the statistics come from sync_moments
            layer._moments = types.MethodType(sync_moments, layer)
            count += 1
        stack.extend(getattr(layer, "layers", []))  # nested models
    return count


def sync_moments(layer, inputs, mask=None):
    """(mean, variance) per channel over the batch of all replicas, in two passes (numerically stable).

    Differentiable: the gradient of a replica-context all-reduce is the all-reduce of the gradients.
    """
    import tensorflow as tf

    if mask is not None:  # masked statistics are not synchronised (no model of ours passes a mask)
        return type(layer)._moments(layer, inputs, mask)
    context = tf.distribute.get_replica_context()
    axes = list(layer._reduction_axes)
    add = tf.distribute.ReduceOp.SUM

    def total(x):
        return context.all_reduce(add, x) if context is not None else x

    count = total(tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype))
    mean = total(tf.reduce_sum(inputs, axes, keepdims=True)) / count
    deviations = tf.math.squared_difference(inputs, tf.stop_gradient(mean))
    variance = total(tf.reduce_sum(deviations, axes, keepdims=True)) / count
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)
