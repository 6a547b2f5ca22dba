"""The cost of each stage of the prediction loop, one after the other on the same frames: what the
pipelined loop has to hide behind the forward pass, and so why it does or does not reach the forward's
images/s (on a CPU the host work runs on the cores the network leaves idle, and no more)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import numpy as np

SINKS = ("evaluation", "calibration", "boundary", "png")


def make_sink(name: str, folder: str):
    from bench.evaluation.sinks import BoundarySink, CalibrationSink
    from bench.evaluation.streaming import StreamingEvaluator
    from bench.inference.sinks import LabelPngs

    if name == "evaluation":
        return StreamingEvaluator()
    if name == "calibration":
        return CalibrationSink()
    if name == "boundary":
        return BoundarySink()
    return LabelPngs(folder)


def close_sinks(sinks) -> None:
    for sink in sinks:
        if hasattr(sink, "close"):
            sink.close()


def _per_frame(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall, CPU) seconds per frame of `fn()` over `n` frames."""
    began, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - began) / n, (time.process_time() - cpu) / n


def stage_profile(opened, samples, cpu: dict[str, float] | None = None) -> dict[str, float]:
    """{stage: wall seconds per frame}: decode + normalise, forward, arg-max on the device, the logits
    taken to the host as the loop takes them (a view of the tensor's buffer on a CPU, a copy from a GPU),
    numpy's arg-max (what the plain loop does instead), and each sink alone on the frames' predictions.
    `cpu`, when given, receives the CPU seconds per frame of each stage (all threads of the process)."""
    stages: dict[str, tuple[float, float]] = {}
    import tensorflow as tf

    from data.pipeline import eval_dataset

    n = len(samples)
    spec = opened.input_spec
    dataset = eval_dataset(samples, with_labels=False, input_spec=spec, parallel=1, prefetch=0)
    list(dataset.take(1))  # tf.data's start-up
    images: list = []
    stages["decode + normalise"] = _per_frame(lambda: images.extend(dataset), n)
    forward = opened.logits_function()
    forward(images[0])
    logits = []
    stages["forward"] = _per_frame(lambda: logits.extend(_synced(forward(x)) for x in images), n)
    argmax = tf.function(lambda t: tf.cast(tf.argmax(t, axis=-1, output_type=tf.int32), tf.uint8))
    argmax(logits[0])
    ids = []
    stages["arg-max on the device"] = _per_frame(lambda: ids.extend(argmax(t).numpy()[0] for t in logits), n)
    host = []
    stages["logits to the host"] = _per_frame(lambda: host.extend(np.asarray(t)[0] for t in logits), n)
    stages["arg-max in numpy (plain loop)"] = _per_frame(lambda: [np.argmax(a, axis=-1) for a in host], n)
    with tempfile.TemporaryDirectory() as folder:
        for name in SINKS:
            sink = make_sink(name, folder)

            def feed(sink=sink):
                sink.reset()
                for sample, train_ids, values in zip(samples, ids, host, strict=True):
                    sink.process(sample, train_ids, values)
                sink.evaluate()

            feed()  # warm: the ground-truth cache, thread start-up
            stages[f"sink: {name}"] = _per_frame(feed, n)
            close_sinks([sink])
    if cpu is not None:
        cpu.update({name: c for name, (_, c) in stages.items()})
    return {name: wall for name, (wall, _) in stages.items()}


def _synced(tensor):
    """The tensor, once the device has finished it (one element fetched)."""
    _ = tensor[0, 0, 0, 0].numpy()
    return tensor
