"""Small argparse value types shared by the train, predict and perf commands, the one definition of the
inference options every command that predicts takes (`add_inference_arguments`) and of the ground-truth
cache options of every command that scores (`add_gt_cache_arguments`).

A numeric option takes a `Range` (bench/common/ranges.py) as its `type`: the value is checked against what
its arithmetic can take, the message and the help say the range (`help=f"... ({FRAME_COUNT})"`)."""

from __future__ import annotations

import argparse
import sys

from bench.common.ranges import Range, positive_int
from data.sizes import size_argument as size
from models.inference_modes import DEFAULT_SCALES, MAX_SCALE, MODES, InferenceSettings, scales_for
from models.precision import DEFAULT_PRECISION, PRECISIONS

FRAME_COUNT = positive_int(1_000_000)
"""How many frames to use (--limit, --val-limit, --n): at least one; Cityscapes has 5000."""

REPEATS = positive_int(10_000)
"""Timed rounds of a benchmark (--repeat, --repeats): at least one, or nothing is timed."""

__all__ = [
    "FRAME_COUNT",
    "MAX_SCALE",
    "REPEATS",
    "Range",
    "add_dataset_format_argument",
    "add_gt_cache_arguments",
    "add_inference_arguments",
    "add_source_arguments",
    "gt_cache_from_arguments",
    "inference_settings",
    "scales",
    "seeds",
    "size",
    "dataset_format",
    "source_options",
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
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="frames per forward pass, consecutive frames of one size (--mode whole; default 1)",
    )
    add_source_arguments(parser)


def add_source_arguments(parser: argparse.ArgumentParser, *, threads: bool = True) -> None:
    """--runtime, --providers, --recipe (and --threads, unless the command has its own): how an exported
    graph (.onnx, OpenVINO .xml) runs; read back with `source_options(args)`."""
    from bench.sources.graph_runtimes import RUNTIMES

    parser.add_argument(
        "--runtime",
        choices=(*RUNTIMES, "auto"),
        default=None,
        help="what runs an .onnx file: onnxruntime (default) or openvino (an OpenVINO .xml: openvino only); "
        "auto: the fastest faithful way measured by `bench perf backends CHECKPOINT` (results/backends.csv)",
    )
    parser.add_argument(
        "--providers",
        type=lambda text: tuple(p.strip() for p in text.split(",") if p.strip()),
        default=None,
        help="ONNX Runtime execution providers in order, e.g. cuda,cpu (default cpu; cuda and tensorrt "
        "need onnxruntime-gpu), or the OpenVINO device (default CPU)",
    )
    parser.add_argument(
        "--recipe",
        default=None,
        metavar="FILE",
        help="JSON recipe of an .onnx/.xml model: its input normalisation, output kind and channels, "
        "layout (default: MODEL.onnx.json beside it, else the file's cityscapes_bench metadata)",
    )
    if threads:
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="threads of an .onnx/.xml model's runtime (default: the cores this process may use)",
        )


def source_options(args: argparse.Namespace):
    """The `SourceOptions` of `add_source_arguments`' options."""
    from bench.sources.opened import SourceOptions
    from data.errors import UserError

    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads} must be at least 1")
    return SourceOptions(
        runtime=getattr(args, "runtime", None),
        providers=getattr(args, "providers", None) or None,
        threads=threads,
        recipe=getattr(args, "recipe", None),
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
        batch=getattr(args, "batch", 1),
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


def add_dataset_format_argument(parser: argparse.ArgumentParser, root_option: str = "--dataset") -> None:
    """`--dataset-format`: how the folder of `root_option` is laid out (data/layouts.py); read back with
    `dataset_format(args, root)`."""
    from data.layouts import FORMATS

    parser.add_argument(
        "--dataset-format",
        choices=FORMATS,
        default=None,
        help=f"layout of {root_option}: {', '.join(FORMATS)} (default: the one the folder holds; name it "
        "where a folder could be read two ways, e.g. a Cityscapes root that also holds leftImg8bit_foggy/; "
        "README 'Generalization' says how each is laid out)",
    )


def dataset_format(args: argparse.Namespace, root) -> str:
    """The layout `root` (None: $CITYSCAPES_DATASET) is read as under `--dataset-format` (`read_as`)."""
    from data.layouts import read_as

    return read_as(root, getattr(args, "dataset_format", None))
