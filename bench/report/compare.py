"""`python -m bench compare (RUN_DIR | results.csv | result.json) --reference NAME`: ours beside a reference.

Prints our row and a published row side by side with per-class deltas in percentage points, as a text table
or as markdown. `compare_rows` returns the same table as a DataFrame for reuse (plots, README).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common.markdown import MISSING, markdown_table, pct, signed
from bench.common.numbers import to_float
from bench.report import references
from bench.report.results import CLASS_COLUMNS, read_rows
from bench.report.tables import dataset_label, method_label
from data.errors import UserError
from data.labels import SHORT_NAMES

SUMMARY_ROWS = (("miou", "mIoU"), ("iiou", "iIoU"), ("category_miou", "category mIoU"))


def compare_rows(ours: Mapping[str, Any], reference: Mapping[str, Any]):
    """Per-class table (percent): columns `name`, `ours`, `reference`, `delta` (ours - reference, points).

    One row per class in train-ID order, then mIoU, iIoU and category mIoU. Delta is NaN where either side
    is missing (the reference did not publish it, or the class is absent from our ground truth).
    """
    import pandas as pd

    keys = [*CLASS_COLUMNS, *(k for k, _ in SUMMARY_ROWS)]
    names = [*SHORT_NAMES, *(label for _, label in SUMMARY_ROWS)]
    mine = [to_float(ours.get(k)) for k in keys]
    theirs = [to_float(reference.get(k)) for k in keys]
    frame = pd.DataFrame({"name": names, "ours": mine, "reference": theirs}, index=keys)
    frame["delta"] = frame["ours"] - frame["reference"]
    return frame


def _number(value: Any, where: str, source: Path, high: float) -> float:
    """A score from a JSON file: a number in 0..high or null (NaN); anything else names the key and file."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise UserError(f"{source}: {where} is {value!r}, not a number in 0..{high:g} or null: fix the file")
    return float(value)


def _row_from_cityscapes_json(data: Mapping[str, Any], source: Path) -> dict[str, Any]:
    """Our row from cityscapesScripts-keyed JSON (fractions in [0, 1], null for NaN)."""
    scores = data.get("classScores")
    if not isinstance(scores, Mapping):
        raise UserError(f"{source} is neither a result row nor cityscapesScripts JSON (no classScores)")

    def percent(v: Any, where: str) -> float:
        return _number(v, where, source, 1.0) * 100.0

    row: dict[str, Any] = {name: percent(scores.get(name), f"classScores.{name}") for name in CLASS_COLUMNS}
    for column, key in (
        ("miou", "averageScoreClasses"),
        ("iiou", "averageScoreInstClasses"),
        ("category_miou", "averageScoreCategories"),
    ):
        row[column] = percent(data.get(key), key)
    row.setdefault("model", str(source))  # the file itself: its folder name says nothing of the model
    return row


def _checked_row(data: Mapping[str, Any], source: Path) -> dict[str, Any]:
    """A result row from JSON (`row.json`): its scores must be percentages or null."""
    row = dict(data)
    for column in (*CLASS_COLUMNS, *(k for k, _ in SUMMARY_ROWS)):
        if row.get(column) == "":
            row[column] = None
        row[column] = _number(row.get(column), column, source, 100.0)
    return row


def load_ours(path: str | os.PathLike, *, row: int | None = None, model: str | None = None) -> dict[str, Any]:
    """Our row from results.csv (by --row or the last row of --model), a run folder or a JSON file."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"{path} does not exist: pass a run folder under results/runs/, results/results.csv "
            f"or a result JSON"
        )
    if path.is_dir():
        for name in ("row.json", "result.json"):
            if (path / name).is_file():
                return load_ours(path / name)
        raise UserError(f"run folder {path} has neither row.json nor result.json: is it a run folder?")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise UserError(f"cannot read {path} as JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise UserError(
                f"{path} holds a JSON {type(data).__name__}, not an object: pass a result row or the "
                f"JSON `bench evaluate --json` writes"
            )
        if "model" in data and "miou" in data:
            return _checked_row(data, path)
        return _row_from_cityscapes_json(data, path)
    frame = read_rows(path)
    if frame.empty:
        raise UserError(f"{path} has no result rows yet: run `make bench` first")
    if model is not None:
        matching = frame.index[frame["model"] == model]
        if len(matching) == 0:
            known = ", ".join(sorted(set(frame["model"])))
            raise UserError(f"no row of model {model!r} in {path}; models present: {known}")
        index = matching[-1]
    else:
        index = -1 if row is None else row
        if not -len(frame) <= index < len(frame):
            raise UserError(f"{path} has {len(frame)} row(s); --row {index} is out of range")
        index = frame.index[index]
    record = frame.loc[index].to_dict()
    record["_row"] = int(index)
    return record


def _describe_ours(ours: Mapping[str, Any]) -> str:
    label = method_label(str(ours.get("model", "?")), str(ours.get("preset", "") or ""))
    parts = [label]
    if ours.get("dataset"):
        parts.append(f"on {dataset_label(str(ours['dataset']), str(ours.get('dataset_kind', '')))}")
    for key in ("split", "mode"):
        if ours.get(key):
            parts.append(f"{key} {ours[key]}")
    if "_row" in ours:
        parts.append(f"(row {ours['_row']})")
    return " ".join(parts)


def _describe_reference(reference: Mapping[str, Any]) -> str:
    return (
        f"{reference['method']} ({reference['split']}, {reference['protocol']}); "
        f"source: {reference['source']} <{reference['url']}>"
    )


def _warnings(ours: Mapping[str, Any], reference: Mapping[str, Any]) -> list[str]:
    notes = []
    if ours.get("dataset_kind") == "synthetic":
        notes.append("our row is on the synthetic dataset: not comparable with Cityscapes numbers")
    if ours.get("split") and ours["split"] != reference.get("split"):
        notes.append(f"splits differ: ours {ours['split']}, reference {reference.get('split')}")
    if reference.get("notes"):
        notes.append(f"reference notes: {reference['notes']}")
    return notes


def format_text(table, ours: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """Aligned plain-text report: who is compared, caveats, then class / ours / reference / delta."""
    lines = [f"ours:      {_describe_ours(ours)}", f"reference: {_describe_reference(reference)}"]
    lines += [f"note: {n}" for n in _warnings(ours, reference)]
    width = max(len(n) for n in table["name"])
    lines.append("")
    lines.append(f"{'class':<{width}}  {'ours':>7}  {'ref':>7}  {'delta':>7}")
    for _, r in table.iterrows():
        lines.append(
            f"{r['name']:<{width}}  {pct(r['ours']):>7}  {pct(r['reference']):>7}  {signed(r['delta']):>7}"
        )
    return "\n".join(lines) + "\n"


def format_markdown(table, ours: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """The same comparison as markdown: caveats as a list, then one row per class."""
    lines = [f"**ours:** {_describe_ours(ours)}  ", f"**reference:** {_describe_reference(reference)}", ""]
    lines += [f"- {n}" for n in _warnings(ours, reference)]
    if lines[-1] != "":
        lines.append("")
    body = [[r["name"], pct(r["ours"]), pct(r["reference"]), signed(r["delta"])] for _, r in table.iterrows()]
    return (
        "\n".join(lines)
        + "\n"
        + markdown_table(["class", "ours", "reference", "delta (pp)"], body, right=(1, 2, 3))
    )


PSPNET_FAMILY = ("pspnet", "pspnet-seed", "fcn")
"""Models whose rows default to the seed document's table (PSPNet's paper, test split)."""


def default_reference(ours: Mapping[str, Any]) -> str:
    """The reference row our row names (a published checkpoint's or weights'), else the PSPNet seed table
    for the PSPNet family; any other model must name one: a PSPNet row is no reference for it."""
    named = str(ours.get("reference") or "")
    if named and named != "nan":
        return named
    model = str(ours.get("model") or "")
    if model in PSPNET_FAMILY or not model:
        return references.DEFAULT_REFERENCE
    raise UserError(
        f"our row (model {model}) names no reference row: pass --reference TABLE or ROW-ID "
        f"(results/reference/, e.g. espnet-authors); {references.DEFAULT_REFERENCE} is PSPNet's"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run folder, results.csv, or a result/cityscapesScripts JSON file")
    parser.add_argument(
        "--reference",
        default=None,
        help="table name in results/reference/, a reference row id, or 'leaderboard' (our row placed among "
        "the published Cityscapes test results, per class) (default: the one our row names, else "
        f"{references.DEFAULT_REFERENCE})",
    )
    parser.add_argument("--reference-row", type=int, default=0, help="row of the reference table (default 0)")
    parser.add_argument("--reference-dir", default=str(references.REFERENCE_DIR), help=argparse.SUPPRESS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--row", type=int, help="row of results.csv (0-based, <0 from the end; default last)")
    which.add_argument("--model", help="the last row of this model in results.csv")
    parser.add_argument("--markdown", action="store_true", help="print markdown instead of a text table")
    parser.add_argument(
        "--plot",
        default=None,
        help="also save a PNG: per-class bars against the reference, or with --reference leaderboard the "
        "published range per class and our value",
    )


def run(args: argparse.Namespace) -> int:
    if args.reference == "leaderboard":
        return compare_leaderboard(args)
    if args.reference:  # checked before our row, so a typo is reported first
        reference = references.select(args.reference, args.reference_row, args.reference_dir)
    ours = load_ours(args.source, row=args.row, model=args.model)
    if not args.reference:  # the reference our row names (a published checkpoint's), else the seed table
        reference = references.select(default_reference(ours), args.reference_row, args.reference_dir)
    table = compare_rows(ours, reference)
    text = format_markdown if args.markdown else format_text
    print(text(table, ours, reference), end="")
    if table["ours"].isna().all():
        print(f"warning: our row has no IoU values ({MISSING} everywhere)")
    if args.plot:
        from bench.report import plots

        label = f"{reference['method']} ({reference['split']})"
        out = plots.iou_bars(
            ours, args.plot, reference=reference, ours_label=_describe_ours(ours), reference_label=label
        )
        print(f"plot: {out}")
    return 0


def compare_leaderboard(args) -> int:
    """`bench compare SOURCE --reference leaderboard [--markdown] [--plot FILE]`."""
    from bench.report import leaderboard

    board = leaderboard.load(leaderboard.TEST_TABLE, args.reference_dir)
    ours = load_ours(args.source, row=args.row, model=args.model)
    table = leaderboard.place(ours, board)
    notes = leaderboard.caveats(ours)
    if args.markdown:
        described = leaderboard.describe_board(board)
        lines = [f"**ours:** {_describe_ours(ours)}  ", f"**leaderboard:** {described}", ""]
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
        print("\n".join(lines) + "\n" + leaderboard.format_markdown(table), end="")
    else:
        header = [f"ours:        {_describe_ours(ours)}", f"leaderboard: {leaderboard.describe_board(board)}"]
        print(leaderboard.format_text(table, header + [f"note: {n}" for n in notes]), end="")
    if getattr(args, "plot", None):
        from bench.report import plots

        out = plots.leaderboard_ranges(ours, board, args.plot, ours_label=_describe_ours(ours))
        print(f"plot: {out}")
    return 0
