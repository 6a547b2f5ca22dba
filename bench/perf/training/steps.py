"""`python -m bench perf train`: training images/s with 1 and N data-parallel replicas, and the scaling.

The step is the trainer's own (`bench.training.train_step.make_train_step`: global loss normalisation, SyncBN
with more than one replica, gradient all-reduce) under a `MirroredStrategy`, on a batch held in memory so
the input pipeline stays out of the figure. Weak scaling, as data-parallel training is used: each replica
keeps `--per-replica-batch` images, so N replicas train a global batch N times larger; the efficiency is
images/s with N replicas / (N x images/s with one).

Replicas are the local GPUs when TensorFlow sees enough of them (bfloat16 compute, and XLA for the single
replica, as `bench train` does there), else logical CPU devices split from the one CPU. Logical CPU devices
share the same cores: when one replica already keeps them busy, N replicas can only take turns (about 1/N
efficiency), so on a CPU the figure shows what the distribution machinery costs, not a speed-up.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.arguments import size

    parser.add_argument("--model", default="pspnet", help="registry name or package.module:function")
    parser.add_argument("--preset", default="tiny", help="model preset (default tiny; 'none' for none)")
    parser.add_argument("--crop", type=size, default=(128, 256), help="training crop HxW (default 128x256)")
    parser.add_argument("--per-replica-batch", type=int, default=2, help="images per replica per step (2)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of the scaled run (default 2)")
    parser.add_argument(
        "--steps", type=int, default=5, help="timed steps per measurement (after one warm-up)"
    )
    parser.add_argument("--float32", action="store_true", help="no mixed precision or XLA even on GPUs")
    from bench.perf.model.peer import PARITY_PYTHON

    parser.add_argument(
        "--peer",
        choices=("mmseg",),
        default=None,
        help="instead: PSPNet-R50-D8's training step, ours against mmsegmentation's own on torch CPU "
        "(.venv-parity), same batch (--per-replica-batch), crop and threads, fp32 and bf16; --steps "
        "timed steps each (bench/perf/training/peer.py)",
    )
    parser.add_argument(
        "--peer-python",
        default=str(PARITY_PYTHON),
        help="interpreter with torch and mmsegmentation (default .venv-parity/bin/python)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="with --peer: intra-op threads of both (default: all cores)"
    )


def measure(
    model: str,
    preset: str | None,
    devices: list[str],
    *,
    per_replica_batch: int,
    crop: tuple[int, int],
    steps: int,
    accelerate: bool,
) -> float:
    """Images/s of the trainer's step mirrored over `devices` (a batch in memory, after one warm-up step)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from bench.perf.timing import measure, rate
    from bench.training.train_step import build_trainable, make_train_step

    strategy = tf.distribute.MirroredStrategy(devices)
    replicas = strategy.num_replicas_in_sync
    keras.utils.set_random_seed(0)
    net, optimizer, _ = build_trainable(
        model, preset, {}, strategy=strategy, accelerate=accelerate, lr=0.01, steps=1000
    )
    step = make_train_step(net, optimizer, jit=accelerate and replicas == 1, strategy=strategy)
    rng = np.random.default_rng(0)
    shape = (per_replica_batch, *crop)
    images = [tf.constant(rng.normal(size=(*shape, 3)).astype(np.float32)) for _ in range(replicas)]
    labels = [tf.constant(rng.integers(0, 19, size=shape).astype(np.uint8)) for _ in range(replicas)]

    def distributed(parts):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: parts[ctx.replica_id_in_sync_group]
        )

    x, y = distributed(images), distributed(labels)
    float(step(x, y)["loss"])  # trace and warm up
    timing, _ = measure(lambda: [float(step(x, y)["loss"]) for _ in range(steps)])
    return rate(replicas * per_replica_batch * steps, timing.wall)


def run(args: argparse.Namespace) -> int:
    from data.errors import UserError

    if args.peer:
        from bench.perf.training import peer as train_peer

        return train_peer.run(args)

    if min(args.per_replica_batch, args.replicas, args.steps) < 1:
        raise UserError("--per-replica-batch, --replicas and --steps must be at least 1")
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow(training=True)

    from bench.training.strategy import split_cpu

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= args.replicas:
        devices = [f"/gpu:{i}" for i in range(args.replicas)]
        kind, accelerate = "GPU", not args.float32
    else:
        devices = split_cpu(args.replicas)
        kind, accelerate = "logical CPU device", False
    preset = None if args.preset in (None, "", "none") else args.preset
    crop = tuple(args.crop)
    print(
        f"TensorFlow {tf.__version__}; {args.model} (preset {preset}), crop {crop[0]}x{crop[1]}, "
        f"{args.per_replica_batch} images per replica, {'mixed bfloat16' if accelerate else 'float32'}; "
        f"replicas are {kind}s",
        flush=True,
    )
    rates = {}
    for count in sorted({1, args.replicas}):
        rates[count] = measure(
            args.model,
            preset,
            devices[:count],
            per_replica_batch=args.per_replica_batch,
            crop=crop,
            steps=args.steps,
            accelerate=accelerate,
        )
        print(
            f"{count} replica(s), global batch {count * args.per_replica_batch}: "
            f"{rates[count]:8.2f} images/s",
            flush=True,
        )
    if args.replicas > 1:
        efficiency = rates[args.replicas] / (args.replicas * rates[1])
        print(
            f"scaling efficiency with {args.replicas} replicas: {100 * efficiency:.0f}% "
            f"(images/s {rates[args.replicas]:.2f} / ({args.replicas} x {rates[1]:.2f}))"
            + (
                f"; logical CPU devices share the cores: about {100 // args.replicas}% when one "
                "replica keeps them busy"
                if kind != "GPU"
                else ""
            )
        )
    return 0
