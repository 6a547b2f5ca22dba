"""`python -m bench submit`: the Cityscapes test-server zip from a checkpoint, or a check of any zip.

    python -m bench submit --checkpoint CKPT --dataset ROOT [--split test] --out submission.zip
    python -m bench submit --check submission.zip --dataset ROOT [--split test]

The frames come from `leftImg8bit/{split}` (the test split's GT is a dummy and is not needed). Writing ends
with the same check, so a zip this command reports as written is one the check accepts.
"""

from __future__ import annotations

import argparse

from bench.arguments import (
    add_inference_arguments,
    add_weights_dir_argument,
    inference_settings,
)
from bench.common.numbers import count
from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--checkpoint",
        help="predict with this checkpoint (.keras file, training folder, PyTorch .pth, LiteRT .tflite, "
        ".onnx, OpenVINO .xml or a published weights name)",
    )
    what.add_argument("--check", metavar="ZIP", help="validate this zip against the split instead")
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="test", help="split the zip covers (default test)")
    parser.add_argument("--out", default=None, help="with --checkpoint: the zip to write")
    add_weights_dir_argument(parser)
    add_inference_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from bench.submission.check import check_submission

    if args.check:
        if args.out:
            raise UserError("--out goes with --checkpoint (writing a zip), not with --check")
        print(check_submission(args.check, args.dataset, args.split).summary())
        return 0
    if not args.out:
        raise UserError("--checkpoint needs --out, the zip to write (e.g. --out submission.zip)")
    from bench.common.tensorflow_import import import_tensorflow
    from bench.submission.writer import check_zip_name, write_submission
    from data.cityscapes import list_images

    settings = inference_settings(args)
    check_zip_name(args.out)
    frames = list_images(args.dataset, args.split)
    import_tensorflow()
    from bench.inference.fastest import open_from_arguments

    model = open_from_arguments(args, settings)
    stats = write_submission(model, frames, args.out, settings, progress=not args.no_progress)
    stats["split"] = args.split
    print(
        f"predicted {count(stats['n_images'], 'frame')} of split '{args.split}' at "
        f"{stats['images_per_s']:.2f} images/s ({stats['device']}, {stats['precision']})"
    )
    print(check_submission(args.out, args.dataset, args.split).summary())
    return 0
