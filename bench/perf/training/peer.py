"""`python -m bench perf train --peer mmseg`: our PSPNet-R50-D8 training step against mmsegmentation's own.

Both on the CPU, same batch, crop and thread count, in one run, steps taking turns (`interleaved_passes`)
so machine load touches both alike. Ours is the trainer's step (`train_step.build_trainable` +
`make_train_step`: forward, cross-entropy with 0.4 x the auxiliary loss, backward, SGD with momentum and
weight decay), not a copy of it. Theirs is mmsegmentation's model in train mode with its own loss and
`torch.optim.SGD` (bench/perf/peers/mmseg_train.py, run by the parity venv). Inputs are a fixed random
batch on both sides (no data pipeline in the figure); bf16 is Keras mixed_bfloat16 against torch autocast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.perf.timing import interleaved_passes, load_note, median, timed

PEER_SCRIPT = Path(__file__).parents[1] / "peers" / "mmseg_train.py"
PRECISIONS = ("fp32", "bf16")


def our_step(precision: str, batch: int, crop: tuple[int, int]):
    """One call = one training step of our PSPNet-R50-D8 on a fixed batch (the loss fetched: synchronised)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from bench.training.train_step import build_trainable, make_train_step

    keras.utils.set_random_seed(0)
    strategy = tf.distribute.get_strategy()
    net, optimizer, _ = build_trainable(
        "pspnet", None, {}, strategy=strategy, accelerate=precision == "bf16", lr=0.01, steps=1000
    )
    step = make_train_step(net, optimizer, jit=False)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch, *crop, 3)).astype(np.float32))
    labels = rng.integers(0, 19, size=(batch, *crop)).astype(np.uint8)
    labels[:, : crop[0] // 8] = 255  # some ignored pixels, as the peer's batch has
    labels = tf.constant(labels)
    return lambda: float(step(images, labels)["loss"])


def _reported(name: str, runner):
    """The runner, printing each step's time as it ends (a step of R50 on a CPU takes seconds)."""

    def run():
        timing = runner()
        print(f"    {name}: step {timing.wall:.2f} s wall, {timing.cpu:.2f} s CPU", flush=True)
        return timing

    return run


def run(args: argparse.Namespace) -> int:
    from bench.common.device import environment
    from bench.common.tensorflow_import import import_tensorflow
    from bench.perf.model.peer import PeerProcess
    from data.errors import UserError

    if args.model != "pspnet":
        raise UserError("--peer mmseg times PSPNet-R50-D8: leave --model at pspnet (the preset is ignored)")
    if min(args.per_replica_batch, args.steps) < 1:
        raise UserError("--per-replica-batch and --steps must be at least 1")
    tf = import_tensorflow(training=True)  # as `bench train` runs: oneDNN off unless TF_ENABLE_ONEDNN_OPTS
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, not {args.threads}")
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)  # before TensorFlow runs an op
    env = environment()
    batch, crop = args.per_replica_batch, tuple(args.crop)
    print(
        f"PSPNet-R50-D8 training step, batch {batch} of {crop[0]}x{crop[1]}, {env['device']}, "
        f"{env['threads']} threads, TensorFlow {env['tensorflow']}; {load_note()}",
        flush=True,
    )
    peer = PeerProcess(args.peer_python, crop, batch, int(env["threads"]), script=PEER_SCRIPT)
    try:
        f = peer.facts
        print(
            f"  peer: mmsegmentation {f['mmseg']} on torch {f['torch']}, {f['threads']} threads", flush=True
        )
        runners = {}
        for precision in PRECISIONS:
            runners[f"ours {precision}"] = _reported(
                f"ours {precision}", timed(our_step(precision, batch, crop))
            )
            runners[f"mmseg {precision}"] = _reported(
                f"mmseg {precision}", lambda p=precision: peer.timing(p)
            )
        times, failed = interleaved_passes(runners, args.steps)
    finally:
        peer.close()
    for name, passes in times.items():
        best, cpu = min(t.wall for t in passes), median([t.cpu for t in passes])
        print(
            f"  {name:<10s} wall {best:7.2f} s best ({median([t.wall for t in passes]):.2f} median), CPU "
            f"{cpu:.2f} s median over {len(passes)} interleaved steps: {batch / best:.2f} images/s",
            flush=True,
        )
    for name, why in failed.items():
        print(f"  {name:<10s} does not run here: {why}", flush=True)
    for precision in PRECISIONS:
        ours, theirs = times.get(f"ours {precision}"), times.get(f"mmseg {precision}")
        if ours and theirs:
            pairs = [t.cpu / o.cpu for o, t in zip(ours, theirs, strict=False)]
            wall = min(t.wall for t in theirs) / min(o.wall for o in ours)
            print(
                f"  {precision}: ours {median(pairs):.2f}x mmsegmentation's speed in CPU time (median of "
                f"{len(pairs)} interleaved pairs), {wall:.2f}x in wall time (best over best)",
                flush=True,
            )
    print(f"{load_note()} at the end: other processes share the cores; compare ratios", flush=True)
    return 0
