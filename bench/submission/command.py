"""`python -m bench submit`: the Cityscapes test-server zip from a checkpoint, or a check of any zip.

    python -m bench submit --checkpoint CKPT --dataset ROOT [--split test] --out submission.zip
    python -m bench submit --check submission.zip --dataset ROOT [--split test]

The frames come from `leftImg8bit/{split}` (the test split's GT is a dummy and is not needed). Writing ends
with the same check, so a zip this command reports as written is one the check accepts.
"""

from __future__ import annotations

import argparse

from bench.arguments import scales as parse_scales
from bench.arguments import size
from data.errors import UserError
from models.precision import DEFAULT_PRECISION, PRECISIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="predict with this checkpoint (.keras file or training folder)")
    what.add_argument("--check", metavar="ZIP", help="validate this zip against the split instead")
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="test", help="split the zip covers (default test)")
    parser.add_argument("--out", default=None, help="with --checkpoint: the zip to write")
    parser.add_argument("--mode", choices=("whole", "slide", "multiscale"), default="whole")
    parser.add_argument("--scales", type=parse_scales, default=None, help="multiscale: e.g. 0.75,1,1.25")
    parser.add_argument("--flip", action="store_true", help="also predict the mirrored frame and average")
    parser.add_argument("--crop", type=size, default=None, help="slide window HxW (default 713x713)")
    parser.add_argument("--stride", type=size, default=None, help="slide stride HxW (default 2/3 of crop)")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION)
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
    from bench.submission.writer import write_submission
    from models.inference_modes import scales_for

    scales = scales_for(args.mode, args.scales)
    stats = write_submission(
        args.checkpoint,
        args.dataset,
        args.split,
        args.out,
        mode=args.mode,
        scales=scales,
        flip=args.flip,
        crop=args.crop,
        stride=args.stride,
        precision=args.precision,
        progress=not args.no_progress,
    )
    print(
        f"predicted {stats['n_images']} frames of split '{args.split}' at {stats['images_per_s']:.2f} "
        f"images/s ({stats['device']}, {stats['precision']})"
    )
    print(check_submission(args.out, args.dataset, args.split).summary())
    return 0
