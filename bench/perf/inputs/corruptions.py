"""`python -m bench perf corruptions`: what each Cityscapes-C corruption costs per frame on this CPU.

One process, one core's worth of work per call (the sweep runs several such processes side by side): each
corruption of data/corruptions.py at the given severities on a frame of `--size` (a real Cityscapes frame
when `--image` is given, else a synthetic street-like frame), timed after a warm-up call at 64x128 that pays
for numba's compilation (glass blur) and the package's imports. Prints seconds per frame and the frames/s a
pool of `--workers` processes would make, to compare with the model's frames/s: corruption keeps up when
that rate is above the model's.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.arguments import size

    parser.add_argument("--size", type=size, default=(1024, 2048), help="frame HxW (default 1024x2048)")
    parser.add_argument("--image", default=None, help="a leftImg8bit PNG to corrupt (resized to --size)")
    parser.add_argument(
        "--severities", default="3", help="comma-separated severities to time (default 3; noises stop at 3)"
    )
    parser.add_argument("--corruptions", default=None, help="comma-separated subset (default: all 16)")
    parser.add_argument("--workers", type=int, default=None, help="pool size for the frames/s column")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per (corruption, severity)")


def test_frame(size: tuple[int, int], image: str | None = None):
    """A uint8 RGB frame of `size`: the given PNG resized, else smooth gradients with edges (not noise, which
    would flatter the JPEG and blur timings)."""
    import numpy as np
    from PIL import Image

    height, width = size
    if image:
        return np.asarray(Image.open(image).convert("RGB").resize((width, height), Image.BILINEAR))
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 255 // width), (y * 255 // height), ((x // 64 + y // 64) % 2) * 200], axis=-1)
    return frame.astype(np.uint8)


def run(args: argparse.Namespace) -> int:
    from bench.evaluation.pool import cap_workers
    from data.corruptions import CORRUPTIONS, check_corruption, corrupt, package_version, seed_for, severities
    from data.errors import UserError

    names = [check_corruption(c) for c in args.corruptions.split(",")] if args.corruptions else CORRUPTIONS
    try:
        wanted = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise UserError(f"--severities {args.severities}: give integers 1..5, e.g. 1,3,5") from None
    if args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    workers = cap_workers(args.workers)[0]
    frame = test_frame(args.size, args.image)
    small = frame[:64, :128].copy()
    print(
        f"{package_version_line(package_version())}; frame {args.size[0]}x{args.size[1]}, "
        f"{args.repeats} call(s) each, pool of {workers} process(es)"
    )
    print(f"{'corruption':<18} {'severity':>8} {'s/frame':>9} {'frames/s (pool)':>16}")
    total, count = 0.0, 0
    for name in names:
        levels = [s for s in wanted if s in severities(name)] or [max(severities(name))]
        corrupt(small, name, levels[0], 0)  # warm-up: imports, numba compilation
        for severity in levels:
            began = time.perf_counter()
            for repeat in range(args.repeats):
                corrupt(frame, name, severity, seed_for(f"perf{repeat}", name, severity))
            seconds = (time.perf_counter() - began) / args.repeats
            total, count = total + seconds, count + 1
            print(f"{name:<18} {severity:>8} {seconds:>9.3f} {workers / seconds:>16.2f}")
    print(f"mean over {count}: {total / count:.3f} s/frame, {workers * count / total:.2f} frames/s (pool)")
    return 0


def package_version_line(version: str) -> str:
    return f"imagecorruptions-imaug {version}"
