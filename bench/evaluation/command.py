"""`python -m bench evaluate`: score prediction PNGs against Cityscapes GT and print the per-class table."""

from __future__ import annotations

import argparse
import os
import sys

from bench.arguments import (
    add_dataset_format_argument,
    add_gt_cache_arguments,
    dataset_format,
    gt_cache_from_arguments,
)
from bench.common.atomic import check_writable
from bench.common.numbers import count
from bench.evaluation import PRED_ID_MODES, EvaluationResult, evaluate
from bench.evaluation.boundary import RATIO
from bench.evaluation.pool import available_cores, cap_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt",
        default=None,
        help="Cityscapes root, or an ACDC, Dark Zurich, Foggy Cityscapes or BDD100K root (see "
        "--dataset-format; default: $CITYSCAPES_DATASET)",
    )
    add_dataset_format_argument(parser, "--gt")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument(
        "--pred",
        required=True,
        help="folder of prediction PNGs, searched recursively; one "
        "file named {city}_{seq}_{frame}*.png per GT image",
    )
    parser.add_argument(
        "--pred-ids",
        choices=PRED_ID_MODES,
        default=None,
        help="what the PNG values are: label IDs 0..33 (official format, default) or "
        "train IDs 0..18 with 255 for void; by default, files that look like train IDs are refused "
        "(exit 2): --pred-ids label scores them as label IDs anyway",
    )
    parser.add_argument("--json", default=None, help="write cityscapesScripts' score keys here (NaN as null)")
    parser.add_argument(
        "--boundary",
        action="store_true",
        help="also score Boundary IoU per class (bands of d = ratio x image diagonal pixels, Cheng et al.)",
    )
    parser.add_argument(
        "--boundary-ratio",
        type=RATIO,
        default=None,
        metavar="RATIO",
        help="band width d as a fraction of the image diagonal (default 0.005, the authors' for "
        f"Cityscapes; implies --boundary; {RATIO})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"decoding processes (default and most: the cores, {available_cores()})",
    )
    parser.add_argument(
        "--worst",
        type=int,
        default=0,
        metavar="N",
        help="also print the N frames of lowest per-frame mIoU (with their pixel accuracy and worst classes)",
    )
    add_gt_cache_arguments(parser)


def format_result(result: EvaluationResult) -> str:
    """The seed's per-class IoU table, then iIoU per instance class and category IoU/iIoU (percent)."""
    from bench.common.markdown import markdown_table, pct, per_class_table

    def percent(value: float) -> str:
        return pct(value * 100)

    row = {name: value * 100 for name, value in result.class_iou.items()}
    row["miou"] = result.miou * 100
    parts = [per_class_table([(["IoU"], row)], label_headers=("",))]
    iiou = result.class_iiou
    parts.append(
        markdown_table(
            ["", *iiou, "iIoU"],
            [["iIoU", *map(percent, iiou.values()), percent(result.iiou)]],
            right=range(1, len(iiou) + 2),
        )
    )
    cats = list(result.category_iou)
    parts.append(
        markdown_table(
            ["category", *cats, "mean"],
            [
                ["IoU", *(percent(result.category_iou[c]) for c in cats), percent(result.category_miou)],
                [
                    "iIoU",
                    *(percent(result.category_iiou.get(c, float("nan"))) for c in cats),
                    percent(result.category_iiou_mean),
                ],
            ],
            right=range(1, len(cats) + 2),
        )
    )
    if result.boundary is not None:
        row = {name: value * 100 for name, value in result.boundary.class_iou.items()}
        row["miou"] = result.boundary.miou * 100
        label = f"boundary IoU (d = {result.boundary.ratio:g} x diagonal)"
        parts.append(per_class_table([([label], row)], label_headers=("",)))
    if result.calibration is not None:
        parts.append(format_calibration(result.calibration))
    parts.append(f"{count(result.n_images, 'image')}, {result.seconds:.2f} s\n")
    return "\n".join(parts)


def format_calibration(calibration) -> str:
    """One line: ECE, MCE, NLL, Brier at T = 1, the temperature and ECE/NLL after it (or why none)."""
    if not calibration.available:
        return "calibration: unavailable (no logits: arg-max-only predictions)\n"
    source = "fitted on this split: optimistic" if calibration.temperature_source == "fit" else "given"
    return (
        f"calibration: ECE {100 * calibration.ece:.2f}%, MCE {100 * calibration.mce:.2f}%, NLL "
        f"{calibration.nll:.4f}, Brier {calibration.brier:.4f}; temperature {calibration.temperature:.3g} "
        f"({source}): ECE {100 * calibration.ece_t:.2f}%, NLL {calibration.nll_t:.4f}\n"
    )


def run(args: argparse.Namespace) -> int:
    score(args)
    return 0


def score(args: argparse.Namespace) -> EvaluationResult:
    """`bench evaluate` up to its table and JSON; the result, for a caller that records it as a row."""
    if args.workers is not None and args.workers < 1:
        from data.errors import UserError

        raise UserError(f"--workers must be at least 1, not {args.workers}")
    if args.worst < 0:
        from data.errors import UserError

        raise UserError(f"--worst must be 0 or more frames, not {args.worst}")
    if not args.gt and not os.environ.get("CITYSCAPES_DATASET"):
        from data.errors import UserError

        raise UserError(
            "no ground truth given: pass --gt ROOT (the Cityscapes root that holds gtFine/) or set "
            "CITYSCAPES_DATASET=ROOT"
        )
    if args.json:
        check_writable(args.json, "--json file", folder=False)  # before the work, not after it

    ratio = args.boundary_ratio
    if ratio is None and args.boundary:
        from bench.evaluation.boundary import DILATION_RATIO

        ratio = DILATION_RATIO
    fmt = dataset_format(args, args.gt)
    if fmt != "cityscapes" and (args.boundary or args.boundary_ratio is not None):
        from data.errors import UserError

        raise UserError(
            f"--boundary is not supported by `bench evaluate` on a dataset laid out as {fmt}: score "
            f"Boundary IoU with `bench predict --dataset ROOT --evaluate`, or leave out --boundary"
        )
    workers, note = cap_workers(args.workers)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if fmt != "cityscapes":
        from bench.evaluation.evaluator import evaluate_layout

        result = evaluate_layout(
            args.gt,
            fmt,
            args.split,
            args.pred,
            pred_ids=args.pred_ids or "label",
            workers=workers,
            progress=sys.stderr.isatty(),
        )
        return _show(args, result)
    result = evaluate(
        args.gt,
        args.split,
        args.pred,
        pred_ids=args.pred_ids or "label",
        workers=workers,
        progress=sys.stderr.isatty(),
        gt_cache=gt_cache_from_arguments(args),
        boundary_ratio=ratio,
    )
    return _show(args, result)


def _show(args: argparse.Namespace, result: EvaluationResult) -> EvaluationResult:
    """Print the table (and the worst frames), write --json; a likely train-ID mix-up is refused."""
    if args.pred_ids is None and result.warnings:  # a likely mix-up is not a result: no table, exit 2
        from data.errors import UserError

        raise UserError(f"{result.warnings[0]}; or pass --pred-ids label to score them as label IDs anyway")
    for warning in result.warnings:  # before the table: a number below it is not read as trusted
        print(f"WARNING: {warning}", file=sys.stderr)
    print(format_result(result), end="")
    if args.worst and result.frames is not None:
        from bench.evaluation.frames import format_worst

        print(f"\nworst {min(args.worst, len(result.frames))} frames by per-frame mIoU (percent):")
        print(format_worst(result.frames, args.worst), end="")
    if args.json:
        print(f"wrote {result.write_json(args.json)}")
    return result
