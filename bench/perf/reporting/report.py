"""`python -m bench perf report`: the time to write a run folder's report for N frames (target: under 2 s
for 500), with the worst frames' full-resolution thumbnails, measured on made-up scores."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.arguments import FRAME_COUNT

TARGET_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=FRAME_COUNT, default=500, help="frames in the run (default 500)")
    parser.add_argument("--out", default=None, help="write the run folder here (default: a temporary one)")


def write_made_up_run(out: Path, n: int, *, size: tuple[int, int] = (1024, 2048), seed: int = 0) -> None:
    """A run folder of `n` frames with random confusion matrices and one full-size frame for the worst
    thumbnails, then its report.html: what `bench run` leaves, without running a model."""
    from PIL import Image

    from bench.evaluation.frames import FrameScores
    from bench.evaluation.scores import EvaluationResult
    from bench.report.frame_images import write_worst_frames
    from bench.report.html_page import write_report
    from bench.report.run_folder import write_json
    from data.labels import NUM_LABEL_IDS, to_train_ids

    rng = np.random.default_rng(seed)
    conf = rng.integers(0, 2000, (n, NUM_LABEL_IDS, NUM_LABEL_IDS)).astype(np.int64)
    frames = FrameScores([f"city{i % 3}_{i:06d}_000019" for i in range(n)], conf)
    h, w = size
    gt = rng.integers(0, NUM_LABEL_IDS, (h // 64, w // 64), dtype=np.uint8)
    gt = np.repeat(np.repeat(gt, 64, axis=0), 64, axis=1)  # flat regions, like label maps
    image = out / "frame_leftImg8bit.png"  # a dataset's photo: copied as it is, shrunk for the thumbnail
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(image, compress_level=1)
    pred = to_train_ids(gt)
    pred[:, : w // 3] = 0
    result = EvaluationResult(conf.sum(axis=0), {}, {}, {}, {}, n, 1.0, frames=frames)
    write_json(out / "result.json", {"classScores": {}, "measures": result.measures, **frames.to_dict()})
    frames.write_csv(out / "frames.csv")
    write_worst_frames(out, frames, lambda key: (image, gt, pred))
    write_report(out)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        out.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        write_made_up_run(out, args.frames)
        seconds = time.perf_counter() - began
    verdict = "met" if seconds < TARGET_SECONDS else "NOT met"
    print(
        f"report of {args.frames} frames (6 full-resolution worst frames): {seconds:.2f} s "
        f"(target < {TARGET_SECONDS:g} s for 500: {verdict})"
    )
    return 0
