"""`python -m bench export CHECKPOINT --format onnx|openvino|litert --out FILE`: one of our checkpoints (a
`.keras` file, a training folder, a published `.pth` converted on the fly) as a file other runtimes run,
with its recipe (bench/export/recipe.py), checked on one frame against its source.

The files are written to a hidden folder beside `--out` and moved into place only when the check passed:
a failed export or check leaves nothing behind (exit 1 for a failed check, 2 for bad input).
`--precision int8` (LiteRT) quantises after training, calibrated on `--calibration-frames N` frames of the
train split of `--dataset`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from itertools import islice
from pathlib import Path

from bench.common.atomic import check_writable
from bench.export.writers import FORMATS, SUFFIXES, check_format, files_of
from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", help=".keras checkpoint, training folder, published .pth or weights name"
    )
    parser.add_argument("--format", required=True, help=f"{'|'.join(FORMATS)}")
    parser.add_argument("--out", required=True, help=f"file to write ({', '.join(SUFFIXES.values())})")
    parser.add_argument(
        "--precision", default="fp32", help="fp32 (default), fp16 (openvino, litert), int8 (litert)"
    )
    parser.add_argument(
        "--calibration-frames", type=int, default=None, metavar="N", help="int8: frames to calibrate on"
    )
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="split of the check frame (default val)")
    parser.add_argument(
        "--calibration-split", default="train", help="split of the int8 calibration frames (default train)"
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        metavar="PCT",
        help="fail below this arg-max agreement on the check frame (default 99.9 fp32, 99 fp16, 90 int8)",
    )
    parser.add_argument("--json", default=None, help="also write the export's figures to this JSON file")


def check_arguments(args: argparse.Namespace) -> Path:
    """Every refusal that needs no model: format, precision, calibration, the files to write."""
    out = Path(args.out)
    check_format(args.format, args.precision, out)
    calibrated = args.calibration_frames is not None
    if args.precision == "int8" and not calibrated:
        raise UserError(
            "--precision int8 quantises with calibration data: add --calibration-frames N (e.g. 32) and "
            "--dataset D (the frames' Cityscapes root)"
        )
    if calibrated and args.precision != "int8":
        raise UserError("--calibration-frames calibrates int8 quantisation: add --precision int8")
    if calibrated and args.calibration_frames < 1:
        raise UserError(f"--calibration-frames {args.calibration_frames} must be at least 1")
    if calibrated and not (args.dataset or os.environ.get("CITYSCAPES_DATASET")):
        raise UserError("--calibration-frames needs frames to calibrate on: add --dataset D")
    if args.min_agreement is not None and not 0 <= args.min_agreement <= 100:
        raise UserError(f"--min-agreement {args.min_agreement} is a percentage: 0..100")
    for path in files_of(args.format, out):
        check_writable(path, "--out", folder=False)
    if args.json:
        check_writable(args.json, "--json", folder=False)
    return out


def run(args: argparse.Namespace) -> int:
    out = check_arguments(args)
    from bench.common.datasets import resolve_dataset
    from bench.common.tensorflow_import import import_tensorflow
    from bench.export.check import MIN_AGREEMENT, check_export, refusals
    from bench.export.recipe import recipe
    from bench.export.writers import write
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples

    dataset = resolve_dataset(args.dataset)
    frames = list_samples(dataset.root, args.split, require_images=True)[:1]
    if not frames:
        raise UserError(f"{dataset.root} has no {args.split} frames to check the export on: choose --split")
    calibration = None
    if args.precision == "int8":
        calibration = list_samples(dataset.root, args.calibration_split, require_images=True)
        calibration = calibration[: args.calibration_frames]
        if len(calibration) < args.calibration_frames:
            raise UserError(
                f"--calibration-frames {args.calibration_frames}: {dataset.root} has only {len(calibration)} "
                f"{args.calibration_split} frames; ask for fewer or choose --calibration-split"
            )
    import_tensorflow()
    from data.pipeline import eval_dataset

    opened = open_checkpoint(args.checkpoint)
    if opened.keras is None:
        raise UserError(
            f"{args.checkpoint} is not a Keras model ({opened.metadata.get('runtime') or 'no network'}): "
            f"bench export writes our checkpoints (.keras, training folders, converted .pth)"
        )
    spec = opened.input_spec
    image = next(iter(eval_dataset(frames, with_labels=False, input_spec=spec))).numpy()
    minimum = MIN_AGREEMENT[args.precision] if args.min_agreement is None else args.min_agreement
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent.resolve()))
    try:
        written = write(
            opened.keras,
            args.format,
            tmp / out.name,
            recipe(spec),
            precision=args.precision,
            calibration=(lambda: islice(eval_dataset(calibration, with_labels=False, input_spec=spec), None))
            if calibration
            else None,
        )
        try:
            check = check_export(args.format, tmp / out.name, opened.logits_function(), image)
        except refusals(args.format) as exc:  # the runtime refuses the written graph (an op it lacks)
            raise UserError(
                f"the {args.format} export of {args.checkpoint} does not run in its runtime "
                f"({type(exc).__name__}: {str(exc)[:300]}): nothing written"
            ) from exc
        size_mb = sum(p.stat().st_size for p in written) / 2**20
        print(
            f"{args.format} {args.precision} export of {args.checkpoint} ({size_mb:.1f} MB), checked on "
            f"{frames[0].key} at {image.shape[1]}x{image.shape[2]}: {check.line()}"
        )
        if check.agreement < minimum:
            print(
                f"error: the export agrees with its source on {check.agreement:.3f}% of pixels, below "
                f"{minimum:g}%: nothing written (--min-agreement sets the bar)",
                file=sys.stderr,
            )
            return 1
        for path in written:
            os.replace(path, out.with_name(path.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for path in written:
        print(f"wrote {out.with_name(path.name)}")
    if args.json:
        from bench.common.atomic import write_text

        figures = {
            "checkpoint": str(args.checkpoint),
            "format": args.format,
            "precision": args.precision,
            "files": [str(out.with_name(p.name)) for p in written],
            "check_frame": frames[0].key,
            "agreement": check.agreement,
            "max_delta_logits": check.max_delta,
            "mean_delta_logits": check.mean_delta,
            "calibration_frames": args.calibration_frames,
        }
        print(f"wrote {write_text(args.json, json.dumps(figures, indent=2) + chr(10))}")
    return 0
