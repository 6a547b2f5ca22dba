"""`python -m bench evaluate`: bench/evaluation/command.py's scoring, plus `--out DIR`, a run folder with
report.html (the evaluation package may not import the report package, so the command lives here)."""

from __future__ import annotations

import argparse

from bench.common.atomic import check_writable
from bench.evaluation import command as scoring


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scoring.add_arguments(parser)
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write a run folder here: result.json, frames.csv, confusion and plots, report.html "
        "(no results.csv row: nothing was run)",
    )


def run(args: argparse.Namespace) -> int:
    if args.out:
        from pathlib import Path

        from data.errors import UserError

        if (Path(args.out) / "result.json").exists():
            raise UserError(f"--out {args.out} already holds a run (result.json): pass a new folder")
        check_writable(args.out, "--out folder", folder=True)  # before the work, not after it
    return scoring.run(args, after=write_out_folder if args.out else None)


def write_out_folder(args: argparse.Namespace, result) -> None:
    from bench.report.run_folder import write_html_report, write_run_folder
    from data.cityscapes import resolve_root

    files = write_run_folder(args.out, result, pred_ids=args.pred_ids)
    run_dir = files["json"].parent
    root = resolve_root(args.gt)
    settings = {
        "ground truth": str(root),
        "split": args.split,
        "predictions": args.pred,
        "pred_ids": args.pred_ids,
    }
    title = f"Evaluation of {args.pred} ({args.split}, {result.n_images} frames)"
    files.update(
        write_html_report(
            run_dir, result, None, root, args.split, args.pred, args.pred_ids, title=title, settings=settings
        )
    )
    print(f"wrote {run_dir} (report: {files['report']})")
