"""`python -m bench perf model --checkpoint FILE`: one whole frame through a checkpoint, as the prediction
loop runs it (`open_checkpoint` then its forward pass): any source, a LiteRT `.tflite` included (its own
windows over the frame), timed by the wall clock and the CPU clock with the machine's load beside them."""

from __future__ import annotations

import argparse

import numpy as np

from bench.perf.timing import load_note, measure, median


def time_checkpoint(path: str, size: tuple[int, int], repeats: int, options=None) -> dict:
    """Figures of `repeats` whole-frame passes (after a warm-up) on a random 0..255 RGB frame of `size`
    (of the recipe's input size where the model's recipe has one: what the loop feeds its network).
    `options`: how an exported graph runs (`SourceOptions`)."""
    from bench.sources.opener import open_checkpoint

    opened = open_checkpoint(path, options=options)
    size = opened.input_spec.size or size
    forward = opened.logits_function()
    frame = np.random.default_rng(0).integers(0, 256, (1, *size, 3)).astype(np.float32)
    forward(frame)  # warm-up: tracing, allocation
    timings = [measure(lambda: np.asarray(forward(frame)))[0] for _ in range(max(1, repeats))]
    meta = opened.metadata
    return {
        "model": meta.get("model"),
        "runtime": opened.runtime,
        "windows": meta.get("input_size") if opened.strided else None,  # the windows it slides itself
        "size": size,
        "best_ms": 1000 * min(t.wall for t in timings),
        "median_ms": 1000 * median([t.wall for t in timings]),
        "cpu_s": median([t.cpu for t in timings]),
    }


def run(args: argparse.Namespace) -> int:
    from bench.arguments import source_options
    from bench.common.tensorflow_import import import_tensorflow

    import_tensorflow()  # its start-up lines filtered, as the other benchmarks
    r = time_checkpoint(args.checkpoint, args.size, args.repeats, source_options(args))
    size = r["size"]
    windows = f", {r['windows']} windows" if r["windows"] else ""
    print(
        f"{r['model']} ({r['runtime']}{windows}) on a {size[0]}x{size[1]} frame: {r['best_ms']:.0f} ms best, "
        f"{r['median_ms']:.0f} ms median of {args.repeats}, {r['cpu_s']:.2f} CPU s median per frame; "
        f"{load_note()}",
        flush=True,
    )
    return 0
