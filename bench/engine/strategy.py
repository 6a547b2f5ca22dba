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

import json
import os
from dataclasses import dataclass
from typing import Any

from data.errors import UserError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


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


def read_tf_config() -> dict[str, Any] | None:
    """The parsed `TF_CONFIG` (None when unset or empty); a malformed one is a user error."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
        members = cluster[kind]
        if not isinstance(members, list) or not 0 <= index < len(members):
            raise ValueError(f"task index {index} is not in cluster[{kind!r}] ({members})")
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"TF_CONFIG is not a usable cluster configuration ({type(exc).__name__}: {exc}): set it to "
            f'JSON like {{"cluster": {{"worker": ["host1:port", "host2:port"]}}, '
            f'"task": {{"type": "worker", "index": 0}}}}'
        ) from exc
    return config


def chief_of(config: dict[str, Any] | None) -> bool:
    """TensorFlow's convention: the `chief` task, else `worker` 0 when the cluster has no chief."""
    if not config:
        return True
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in config["cluster"]


def choose(kind: str, *, tf_config: dict | None, gpus: int, cpu_replicas: int | None) -> str:
    """The concrete strategy for a requested one ("auto" resolved); pure, so it is testable without TF."""
    if kind not in STRATEGIES:
        raise UserError(f"--strategy {kind}: choose one of {', '.join(STRATEGIES)}")
    if kind == "auto":
        if tf_config:
            return "multiworker"
        return "mirrored" if gpus >= 2 or (cpu_replicas or 1) >= 2 else "default"
    if kind == "mirrored" and tf_config:
        raise UserError(
            "--strategy mirrored runs on one machine but TF_CONFIG describes a cluster: unset TF_CONFIG, "
            "or use --strategy multiworker"
        )
    if kind == "multiworker" and not tf_config:
        raise UserError(
            "--strategy multiworker needs TF_CONFIG (the cluster's worker addresses and this task's "
            "index); set it on every worker, or use --strategy mirrored on one machine"
        )
    if cpu_replicas and cpu_replicas > 1 and kind != "mirrored":
        raise UserError(f"--cpu-replicas {cpu_replicas} needs --strategy mirrored (or auto), not {kind}")
    return kind


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


def make_distribution(kind: str = "auto", *, cpu_replicas: int | None = None) -> Distribution:
    """Create the strategy (first thing in the process for multiworker or `cpu_replicas`)."""
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
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot start the multi-worker strategy ({exc}): it must be created before any other "
                f"TensorFlow work, in a fresh process"
            ) from exc
    ids = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(ctx.replica_id_in_sync_group)
    )
    local = tuple(int(v) for v in strategy.experimental_local_results(ids))
    # Workers drive equally many replicas, numbered worker by worker (the chief's first).
    workers = int(strategy.num_replicas_in_sync) // len(local)
    chief = chief_of(tf_config) if kind == "multiworker" else True
    return Distribution(strategy, kind, chief, local[0] // len(local), workers, local)


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
