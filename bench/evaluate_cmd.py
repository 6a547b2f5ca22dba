"""`python -m bench evaluate`: score prediction PNGs against Cityscapes GT and print the per-class table."""

from __future__ import annotations

import argparse
import os
import sys

from bench.evaluate import PRED_ID_MODES, EvaluationResult, evaluate
from bench.tables import class_table, percent, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--pred", required=True, help="folder of prediction PNGs, searched recursively; one "
                        "file named {city}_{seq}_{frame}*.png per GT image")
    parser.add_argument("--pred-ids", choices=PRED_ID_MODES, default="label",
                        help="what the PNG values are: label IDs 0..33 (official format, default) or "
                             "train IDs 0..18 with 255 for void")
    parser.add_argument("--json", default=None, help="write cityscapesScripts' score keys here (NaN as null)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"decoding processes (default: all cores, {os.cpu_count()})")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables instead of text")


def format_result(result: EvaluationResult, *, style: str = "text") -> str:
    """The per-class IoU table, then iIoU per instance class and category IoU/iIoU."""
    parts = [class_table([("IoU", list(result.class_iou.values()), result.miou)], style=style)]
    iiou = result.class_iiou
    parts.append(table(["", *iiou, "iIoU"], [["iIoU", *(percent(v, scale=100) for v in iiou.values()),
                                              percent(result.iiou, scale=100)]], style=style))
    cats = list(result.category_iou)
    parts.append(table(["category", *cats, "mean"], [
        ["IoU", *(percent(result.category_iou[c], scale=100) for c in cats),
         percent(result.category_miou, scale=100)],
        ["iIoU", *(percent(result.category_iiou.get(c, float("nan")), scale=100) for c in cats),
         percent(result.category_iiou_mean, scale=100)]], style=style))
    parts.append(f"{result.n_images} images, {result.seconds:.2f} s")
    return "\n\n".join(parts)


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.gt, args.split, args.pred, pred_ids=args.pred_ids, workers=args.workers,
                      progress=sys.stderr.isatty())
    for warning in result.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(format_result(result, style="markdown" if args.markdown else "text"))
    if args.json:
        print(f"wrote {result.write_json(args.json)}")
    return 0
