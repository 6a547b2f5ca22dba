"""`python -m bench report RUN_DIR`: rebuild a run folder's report.html (and results/index.html when the
folder sits in a runs folder) from the folder alone: result.json, row.json, report/, the figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", nargs="+", metavar="RUN_DIR", help="run folder(s) of bench run / evaluate --out"
    )
    parser.add_argument(
        "--index",
        default=None,
        metavar="RUNS_DIR",
        help="also rewrite the index.html beside RUNS_DIR (default: beside each run folder's parent, when "
        "that parent is named runs)",
    )


def run(args: argparse.Namespace) -> int:
    from bench.report.html_page import write_report
    from bench.report.index_page import write_index

    indexes = {Path(args.index)} if args.index else set()
    for folder in map(Path, args.run_dir):
        if not folder.is_dir():
            raise UserError(f"{folder} is no folder: pass a run folder (results/runs/<run>/)")
        print(f"wrote {write_report(folder)}")
        if folder.resolve().parent.name == "runs":
            indexes.add(folder.resolve().parent)
    for runs in sorted(indexes):
        if not runs.is_dir():
            raise UserError(f"--index {runs} is no folder of runs")
        print(f"wrote {write_index(runs)}")
    return 0
