"""`python -m bench evaluate`: bench/evaluation/command.py's scoring, plus what the report side adds (the
evaluation package may not import it, so the command lives here): `--out DIR`, a run folder with report.html,
and `--row NAME`, the scores of an external predictions folder (mmsegmentation's output, another tool's)
recorded as a row of results.csv named NAME, with the dataset's identity (bench/report/identity.py) like
every other row, so it shows in `bench compare`, `bench results` and, for a whole split, the README.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.common.atomic import check_writable
from bench.common.numbers import count
from bench.common.paths import README, RESULTS_CSV
from bench.evaluation import command
from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    command.add_arguments(parser)
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write a run folder here: result.json, frames.csv, confusion and plots, report.html",
    )
    parser.add_argument(
        "--row",
        default=None,
        metavar="NAME",
        help="also record the scores as a row of results.csv named NAME (e.g. mmseg-pspnet-r50)",
    )
    parser.add_argument("--model", default=None, help="with --row: the model column (default: NAME)")
    parser.add_argument("--results", default=str(RESULTS_CSV), help=argparse.SUPPRESS)
    parser.add_argument("--no-readme", action="store_true", help="with --row: leave the README as it is")


def run(args: argparse.Namespace) -> int:
    if args.model and args.row is None:
        raise UserError("--model names the row of --row NAME: add --row")
    if args.out:
        if (Path(args.out) / "result.json").exists():
            raise UserError(f"--out {args.out} already holds a run (result.json): pass a new folder")
        check_writable(args.out, "--out folder", folder=True)  # before the work, not after it
    if args.row is not None or args.out:
        from data.layouts import read_as

        given = args.gt or os.environ.get("CITYSCAPES_DATASET")
        fmt = read_as(given, args.dataset_format) if given else None
        if fmt not in (None, "cityscapes"):
            option = "--row" if args.row is not None else "--out"
            raise UserError(
                f"{option} records a Cityscapes evaluation; {args.gt} is laid out as {fmt}: leave out "
                f"{option} (the table and --json still come), or run `bench generalize CHECKPOINT "
                f"--datasets {fmt}=ROOT` for its table beside Cityscapes val"
            )
    path = check_row_name(args) if args.row is not None else None
    result = command.score(args)
    if args.out:
        write_out_folder(args, result)
    if path is not None:
        row = record(result, args, path)
        print(
            f"result row {row['row']}: {path} ({row['dataset']}, {row['split']} split, "
            f"{count(int(row['n_images']), 'frame')}, {row['scope']})"
        )
        if not args.no_readme and path.resolve() == RESULTS_CSV.resolve():
            from bench.report.readme import update_readme

            update_readme(README, path)
    return 0


def check_row_name(args: argparse.Namespace) -> Path:
    """The results file `--row NAME` goes to, refused before any scoring when NAME is unusable or taken."""
    from bench.report.results import check_results_file, read_rows

    if not args.row.strip() or any(c in args.row for c in ",;\n"):
        raise UserError(f"--row {args.row!r}: a name without ',', ';' or line breaks")
    path = Path(args.results)
    check_results_file(path)
    frame = read_rows(path, missing_ok=True)
    if "row" in frame.columns and (frame["row"] == args.row).any():
        raise UserError(
            f"{path} already has a row named {args.row}: choose another name, or remove it first "
            f"(`python -m bench results remove {args.row}`)"
        )
    return path


def record(result, args: argparse.Namespace, path: Path) -> dict:
    from bench.common.datasets import resolve_dataset
    from bench.report.identity import dataset_identity
    from bench.report.results import append_row, row_from_result
    from data.cityscapes import list_samples, resolve_root

    data = resolve_dataset(str(resolve_root(args.gt)))  # named as `bench run` names it
    samples = list_samples(data.root, args.split)
    identity = {**dataset_identity(data.name, data.kind, data.root, args.split, samples), "row": args.row}
    row = row_from_result(
        result,
        model=args.model or args.row,
        dataset=identity["dataset"],
        dataset_kind=data.kind,
        split=args.split,
        checkpoint=str(Path(args.pred).resolve()),
        notes=f"external predictions {args.pred} (--pred-ids {args.pred_ids or 'label'})",
        identity=identity,
    )
    append_row(path, row)
    return row


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
        "pred_ids": args.pred_ids or "label",
    }
    title = f"Evaluation of {args.pred} ({args.split}, {result.n_images} frames)"
    files.update(
        write_html_report(
            run_dir, result, None, root, args.split, args.pred, args.pred_ids, title=title, settings=settings
        )
    )
    print(f"wrote {run_dir} (report: {files['report']})")
