"""Small argparse value types shared by the train, predict and perf commands, the one definition of the
inference options every command that predicts takes (`add_inference_arguments`) and of the ground-truth
cache options of every command that scores (`add_gt_cache_arguments`)."""

from __future__ import annotations

import argparse
import sys

from data.sizes import size_argument as size
from models.inference_modes import DEFAULT_SCALES, MAX_SCALE, MODES, InferenceSettings, scales_for
from models.precision import DEFAULT_PRECISION, PRECISIONS

__all__ = [
    "MAX_SCALE",
    "add_gt_cache_arguments",
    "add_inference_arguments",
    "gt_cache_from_arguments",
    "inference_settings",
    "scales",
    "seeds",
    "size",
]


def scales(text: str) -> tuple[float, ...]:
    """`0.5,0.75,1.0` -> (0.5, 0.75, 1.0); every scale finite, above 0 and at most `MAX_SCALE`."""
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    # written so that NaN fails too (every comparison with NaN is false)
    if not values or not all(0 < v <= MAX_SCALE for v in values):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of scales above 0 and at most {MAX_SCALE:g}, e.g. 0.75,1.0,1.25"
        )
    return values


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--mode, --scales, --flip, --crop, --stride, --precision, --no-fold-bn: read back with
    `inference_settings(args)`."""
    parser.add_argument("--mode", choices=MODES, default="whole", help="inference mode (default whole)")
    parser.add_argument(
        "--scales",
        type=scales,
        default=None,
        help=f"multiscale: comma-separated scales (default {','.join(map(str, DEFAULT_SCALES))})",
    )
    parser.add_argument("--flip", action="store_true", help="also predict the mirrored frame and average")
    parser.add_argument(
        "--crop", type=size, default=None, help="slide window HxW (default 713x713, PSPNet's)"
    )
    parser.add_argument("--stride", type=size, default=None, help="slide stride HxW (default 2/3 of crop)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help=f"fp32, or bf16 compute with float32 weights and logits (default {DEFAULT_PRECISION})",
    )
    parser.add_argument(
        "--no-fold-bn",
        action="store_true",
        help="keep BatchNorm layers (default: fold them into the convolutions)",
    )


def inference_settings(args: argparse.Namespace) -> InferenceSettings:
    """The settings of `add_inference_arguments`' options (a UserError for a bad combination)."""
    return InferenceSettings(
        mode=args.mode,
        scales=scales_for(args.mode, args.scales),
        flip=args.flip,
        crop=args.crop,
        stride=args.stride,
        precision=args.precision,
        fold_bn=not args.no_fold_bn,
    )


def seeds(text: str) -> tuple[int, ...]:
    """`0,1,2` -> (0, 1, 2): distinct non-negative integers (`bench run --seeds`)."""
    from bench.report.seeds import parse_seeds
    from data.errors import UserError

    try:
        return parse_seeds(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_gt_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """--gt-cache DIR and --no-gt-cache, for every command that scores against ground truth."""
    from bench.evaluation.gt_cache import ENV_VAR

    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--gt-cache",
        default=None,
        metavar="DIR",
        help=f"keep the decoded ground truth here between evaluations (default: ${ENV_VAR}, else "
        "$XDG_CACHE_HOME/cityscapes-bench/gt, else ~/.cache/cityscapes-bench/gt); "
        "`bench cache clear` empties it",
    )
    group.add_argument(
        "--no-gt-cache",
        action="store_true",
        help="decode the ground-truth PNGs every time, neither reading nor writing the cache",
    )


def gt_cache_from_arguments(args: argparse.Namespace):
    """The cache the options ask for, checked before the work: a folder given with --gt-cache that cannot
    be written is an error; the default one is only skipped (with a note), it never costs the result."""
    from bench.common.atomic import check_writable
    from bench.evaluation.gt_cache import AUTO, resolve_gt_cache
    from data.errors import UserError

    if getattr(args, "no_gt_cache", False):
        return None
    explicit = getattr(args, "gt_cache", None)
    cache = resolve_gt_cache(explicit or AUTO)
    if cache is None:
        return None
    try:
        check_writable(cache.root, "--gt-cache folder", folder=True)
    except UserError as exc:
        if explicit:
            raise
        print(f"note: evaluating without the ground-truth cache: {exc}", file=sys.stderr)
        return None
    return cache


def add_weights_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--weights-dir`: where a published weights name is looked for (and downloaded to)."""
    parser.add_argument(
        "--weights-dir",
        default=None,
        metavar="DIR",
        help="folder of published weights files, for a weights name (default: $CITYSCAPES_BENCH_WEIGHTS, "
        "else checkpoints/weights/)",
    )
