"""`python -m bench perf metrics`: the cost of calibration and Boundary IoU per frame against a prediction.

One full-resolution frame (default 1024x2048, 19 classes): the model's whole-image forward pass and arg-max
(the prediction pass a sink rides on; random weights: timing does not depend on them), then on its logits
the calibration sums with the temperature grid (`bench.evaluation.calibration.GRID`), without it, and at one
given temperature, and the Boundary IoU counts. Passes take turns (`interleaved_passes`), so machine load
touches all alike; the ratios to the prediction pass are printed in wall and in CPU seconds
(target: calibration with the grid at most 20% of the prediction pass).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np

from bench.arguments import size

COST_TARGET = 0.20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="pspnet", help="registry model of the prediction pass (pspnet)")
    parser.add_argument("--preset", default="cpu", help="its preset (cpu)")
    parser.add_argument("--size", type=size, default=(1024, 2048), help="HxW of the frame (1024x2048)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each (3)")


def _ground_truth(pred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A GT map near the prediction: blocks of other classes, a void band at the bottom (the ego car)."""
    gt = pred.copy()
    h, w = gt.shape
    for _ in range(40):
        y, x = rng.integers(0, h - h // 16), rng.integers(0, w - w // 16)
        gt[y : y + h // 16, x : x + w // 16] = rng.integers(0, 19)
    gt[h - h // 10 :] = 255
    return gt


def run(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from bench.evaluation.boundary import boundary_counts
    from bench.evaluation.calibration import GRID, frame_sums
    from bench.perf.model.forward import build_forward
    from bench.perf.timing import interleaved_passes, load_note, median, timed

    h, w = args.size
    forward, model = build_forward(args.model, args.preset, (h, w), batch=1, xla=False, fold_bn=True)
    logits = np.asarray(forward()[0], dtype=np.float32)
    pred = np.argmax(logits, axis=-1).astype(np.uint8)
    gt = _ground_truth(pred, np.random.default_rng(0))
    given = (Fraction(2, 3),)  # not a multiple of a power of two: the exp path

    def predict() -> np.ndarray:
        return np.argmax(forward()[0], axis=-1)

    def beside(sink) -> None:
        """Two prediction passes with `sink` summing each frame's logits in a thread beside the next pass."""
        with ThreadPoolExecutor(1) as pool:
            pending = None
            for _ in range(2):
                predict()
                if pending is not None:
                    pending.result()
                pending = pool.submit(sink)
            pending.result()

    runners = {
        "prediction pass (forward + arg-max)": timed(predict),
        "2 passes": timed(lambda: [predict() for _ in range(2)]),
        "2 passes, calibration beside them": timed(lambda: beside(lambda: frame_sums(logits, gt, pred))),
        f"calibration, T grid of {len(GRID)}": timed(lambda: frame_sums(logits, gt, pred)),
        "calibration, T = 1 only": timed(lambda: frame_sums(logits, gt, pred, betas=())),
        "calibration, one given T": timed(lambda: frame_sums(logits, gt, pred, betas=given)),
        "boundary IoU counts": timed(lambda: boundary_counts(gt, pred)),
    }
    times, _ = interleaved_passes(runners, args.repeats)
    print(
        f"{args.model}:{args.preset} at {h}x{w}, {logits.shape[-1]} classes; TensorFlow {tf.__version__}; "
        f"{load_note()}"
    )
    base = "prediction pass (forward + arg-max)"
    base_wall = median([t.wall for t in times[base]])
    base_cpu = median([t.cpu for t in times[base]])
    print(f"{'':40s} {'wall ms':>9} {'CPU ms':>9} {'/ pass (wall)':>14} {'/ pass (CPU)':>13}")
    for name, passes in times.items():
        wall, cpu = median([t.wall for t in passes]), median([t.cpu for t in passes])
        print(
            f"{name:40s} {wall * 1e3:9.0f} {cpu * 1e3:9.0f} {wall / base_wall:14.2f} {cpu / base_cpu:13.2f}"
        )
    grid = median([t.cpu for t in times[f"calibration, T grid of {len(GRID)}"]])
    alone = median([t.wall for t in times["2 passes"]])
    with_sink = median([t.wall for t in times["2 passes, calibration beside them"]])
    print(
        f"calibration with the grid: {100 * grid / base_cpu:.0f}% of the prediction pass in CPU seconds; "
        f"in a thread beside the model it adds {100 * (with_sink / alone - 1):.0f}% to the passes' wall "
        f"time (target <= {100 * COST_TARGET:.0f}%)"
    )
    del model
    return 0
