"""`python -m bench agree A B --dataset D [--split S] [--limit N]`: the same frames through two models.

A and B are anything `open_checkpoint` opens (a `.keras` checkpoint, a `.pth`, a `.tflite`, an `.onnx` on
ONNX Runtime or OpenVINO, an OpenVINO IR). Printed: the share of pixels whose arg-max agrees, the largest and
mean |delta logits| (train-ID channels, where both give logits), each one's per-class IoU and mIoU against
the ground truth (the exact streaming evaluator) and B - A, each one's images/s and runtime. The question it
answers: what does an export, a runtime or int8 cost, and what does it buy. `--json` writes it all (with the
per-frame agreement), `--csv` appends one row (bench/report/results.py; its own columns).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from bench.arguments import add_inference_arguments, inference_settings
from bench.common.atomic import check_writable
from data.errors import UserError

COLUMNS = (
    "a",
    "b",
    "dataset",
    "split",
    "n_images",
    "agreement",
    "max_delta_logits",
    "mean_delta_logits",
    "a_miou",
    "b_miou",
    "delta_miou",
    "a_images_per_s",
    "b_images_per_s",
    "a_runtime",
    "b_runtime",
    "a_precision",
    "b_precision",
    "mode",
    "commit",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="model A: checkpoint, .pth, .tflite, .onnx, .xml or weights name")
    parser.add_argument("b", help="model B, compared with A")
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="split to predict (default val)")
    parser.add_argument("--limit", type=int, default=None, help="first N frames only")
    parser.add_argument("--json", default=None, help="write the comparison to this JSON file")
    parser.add_argument("--csv", default=None, help="append one row to this CSV (e.g. results/agree.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_inference_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bench.agree.pairs import predict_pair
    from bench.common.datasets import resolve_dataset
    from bench.common.tensorflow_import import import_tensorflow
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples

    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit} must be at least 1")
    for path, option in ((args.json, "--json"), (args.csv, "--csv")):
        if path:
            check_writable(path, option, folder=False)
    settings = inference_settings(args)
    dataset = resolve_dataset(args.dataset)
    samples = list_samples(dataset.root, args.split, require_images=True)[: args.limit]
    if not samples:
        raise UserError(f"{dataset.root} has no {args.split} frames: choose --split")
    import_tensorflow()
    opened = [
        open_checkpoint(m, precision=settings.precision, fold_bn=settings.fold_bn) for m in (args.a, args.b)
    ]
    pair = predict_pair(*opened, samples, settings, progress=not args.no_progress)
    report = comparison(args, dataset.name, pair)
    print(format_report(report), end="")
    if args.json:
        from bench.common.atomic import write_text

        print(f"wrote {write_text(args.json, json.dumps(report, indent=2, allow_nan=False) + chr(10))}")
    if args.csv:
        from bench.report.results import append_row, git_commit

        print(f"wrote {append_row(args.csv, row(report, git_commit()), markdown=False, columns=COLUMNS)}")
    return 0


def _side(name: str, scores, stats: dict[str, Any]) -> dict[str, Any]:
    iou = {k: None if math.isnan(v) else 100.0 * v for k, v in scores.class_iou.items()}
    valid = [v for v in iou.values() if v is not None]
    return {
        "model": name,
        "runtime": stats.get("runtime"),
        "precision": stats.get("precision"),
        "images_per_s": stats.get("images_per_s"),
        "threads": stats.get("threads"),
        "miou": sum(valid) / len(valid) if valid else None,
        "class_iou": iou,
    }


def comparison(args: argparse.Namespace, dataset: str, pair) -> dict[str, Any]:
    """Everything `bench agree` reports, as JSON-ready values (percentages; None where undefined)."""
    a, b = (_side(n, s, st) for n, s, st in zip((args.a, args.b), pair.scores, pair.stats, strict=True))
    agreement = pair.agreement
    return {
        "dataset": dataset,
        "split": args.split,
        "n_images": pair.stats[0]["n_images"],
        "pixels": agreement.pixels,
        "mode": args.mode,
        "agreement": agreement.percent,
        "max_delta_logits": agreement.max_delta,
        "mean_delta_logits": agreement.mean_delta,
        "a": a,
        "b": b,
        "delta_miou": None if a["miou"] is None or b["miou"] is None else b["miou"] - a["miou"],
        "delta_class_iou": {
            k: None
            if a["class_iou"][k] is None or b["class_iou"][k] is None
            else b["class_iou"][k] - a["class_iou"][k]
            for k in a["class_iou"]
        },
        "frames": agreement.per_frame,
    }


def _cell(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(report: dict[str, Any]) -> str:
    a, b = report["a"], report["b"]
    lines = [
        f"A: {a['model']} ({a['runtime']}, {a['precision']})",
        f"B: {b['model']} ({b['runtime']}, {b['precision']})",
        f"{report['n_images']} {report['split']} frames of {report['dataset']}, mode {report['mode']}",
        f"arg-max agreement: {report['agreement']:.3f}% of {report['pixels']:,} pixels",
    ]
    if report["max_delta_logits"] is None:
        lines.append("|delta logits|: - (one of them gives only its arg-max)")
    else:
        lines.append(
            f"|delta logits|: max {report['max_delta_logits']:.4g}, mean {report['mean_delta_logits']:.4g}"
        )
    lines += ["", f"{'class':<15}{'A IoU':>8}{'B IoU':>8}{'B-A':>8}"]
    for name in a["class_iou"]:
        lines.append(
            f"{name:<15}{_cell(a['class_iou'][name]):>8}{_cell(b['class_iou'][name]):>8}"
            f"{_cell(report['delta_class_iou'][name], 2):>8}"
        )
    lines.append(f"{'mIoU':<15}{_cell(a['miou']):>8}{_cell(b['miou']):>8}{_cell(report['delta_miou'], 2):>8}")
    lines.append(f"{'images/s':<15}{_cell(a['images_per_s'], 2):>8}{_cell(b['images_per_s'], 2):>8}")
    return "\n".join(lines) + "\n"


def row(report: dict[str, Any], commit: str) -> dict[str, Any]:
    a, b = report["a"], report["b"]
    return {
        "a": a["model"],
        "b": b["model"],
        "dataset": report["dataset"],
        "split": report["split"],
        "n_images": report["n_images"],
        "agreement": report["agreement"],
        "max_delta_logits": report["max_delta_logits"],
        "mean_delta_logits": report["mean_delta_logits"],
        "a_miou": a["miou"],
        "b_miou": b["miou"],
        "delta_miou": report["delta_miou"],
        "a_images_per_s": a["images_per_s"],
        "b_images_per_s": b["images_per_s"],
        "a_runtime": a["runtime"],
        "b_runtime": b["runtime"],
        "a_precision": a["precision"],
        "b_precision": b["precision"],
        "mode": report["mode"],
        "commit": commit,
    }
