"""Where a row lands among published Cityscapes methods, class by class: rank, best published value, gap.

The published methods are `results/reference/cityscapes-test-leaderboard.csv` (test server entries and
papers; four averages and per-class IoU where the source gives them) and `cityscapes-val-published.csv`
(methods that publish only val numbers). A cell the source does not give is empty and the row's notes say
why; `check` enforces that, and that a complete per-class row agrees with its mIoU to the source's rounding.
`bench compare --reference leaderboard` prints `place(...)`; the README shows it for the latest row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common.markdown import MISSING, markdown_table, pct, signed
from bench.common.numbers import to_float
from bench.common.paths import REFERENCE_DIR
from bench.report import references
from bench.report.results import CLASS_COLUMNS
from data.errors import UserError
from data.labels import SHORT_NAMES

ALIAS = "leaderboard"
"""The name `bench compare --reference` takes for this comparison."""
TEST_TABLE = "cityscapes-test-leaderboard"
VAL_TABLE = "cityscapes-val-published"
TABLES = (TEST_TABLE, VAL_TABLE)
TRAINING_DATA = ("fine", "fine+coarse", "extra")
"""Cityscapes fine annotations only; fine and coarse; data beyond Cityscapes and ImageNet (Mapillary...)."""
EXTRA_COLUMNS = ("training_data", "external_data", "category_iiou")
SUMMARY = (("miou", "mIoU"),)


def load(name: str = TEST_TABLE, reference_dir: str | os.PathLike = REFERENCE_DIR):
    """A leaderboard table, checked (`check`): a broken cell is a UserError naming row and column."""
    frame = references.load(name, reference_dir)
    check(frame, Path(reference_dir) / f"{name}.csv")
    return frame


def _decimals(value: float) -> int:
    """Decimals of the text a float was read from ('80.2009' -> 4, '75.17' -> 2)."""
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def rounding(values: list[float]) -> float:
    """How far a rounded source may be off: half a unit of the last digit it prints, i.e. of the most
    decimals among `values` (the server drops trailing zeros: its 75.17 is 75.1700)."""
    return 0.5 * 10.0 ** -max(_decimals(v) for v in values)


def check(frame, path: Path) -> None:
    """Every row names its source and training data; per-class cells are all present, or the notes say why
    some are empty; a complete per-class row's mean matches its mIoU to the rounding of the source."""
    missing = [c for c in EXTRA_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"leaderboard table {path} lacks column(s) {', '.join(missing)}")
    for i, row in enumerate(frame.to_dict("records")):
        where = f"leaderboard table {path} row {i + 1} ({row['method']})"
        if not str(row["url"]).startswith("http") or not str(row["source"]).strip():
            raise UserError(f"{where}: every row needs its source and an http(s) url")
        data = str(row["training_data"])
        if data not in TRAINING_DATA and not (data == "" and row["notes"]):
            raise UserError(
                f"{where}: training_data is {data!r}; use one of {', '.join(TRAINING_DATA)}, or leave it "
                f"empty and say why in notes"
            )
        if math.isnan(row["miou"]):
            raise UserError(f"{where}: no mIoU; a leaderboard row needs at least its mIoU")
        given = [row[c] for c in CLASS_COLUMNS if not math.isnan(row[c])]
        if len(given) < len(CLASS_COLUMNS) and not row["notes"]:
            raise UserError(f"{where}: {len(given)} of 19 per-class IoUs; say in notes why others are empty")
        if len(given) == len(CLASS_COLUMNS):
            mean = sum(given) / len(given)
            tolerance = rounding(given) + rounding([row["miou"]])
            if abs(mean - row["miou"]) > tolerance:
                raise UserError(
                    f"{where}: the mean of its per-class IoUs is {mean:.4f}, its mIoU {row['miou']}: more "
                    f"than the source's rounding ({tolerance:g}) apart; fix the cell that was misread"
                )


def place(ours: Mapping[str, Any], board) -> Any:
    """Per class (then mIoU): our value, how many published values, our rank among them (1 = best; ties
    go our way), the best published value and its method, gap = ours - best, and the lowest value.

    Rank and gap are NaN where our value is missing; classes no source gives have n = 0.
    """
    import pandas as pd

    keys = [*CLASS_COLUMNS, *(k for k, _ in SUMMARY)]
    names = [*SHORT_NAMES, *(label for _, label in SUMMARY)]
    records = []
    for key, name in zip(keys, names, strict=True):
        mine = to_float(ours.get(key))
        published = board[["method", key]].dropna()
        values = published[key].to_numpy(dtype=float)
        best_at = int(values.argmax()) if len(values) else None
        best = float(values[best_at]) if best_at is not None else math.nan
        rank = math.nan if math.isnan(mine) or not len(values) else float(1 + (values > mine).sum())
        records.append(
            {
                "name": name,
                "ours": mine,
                "n": len(values),
                "rank": rank,
                "best": best,
                "best_method": str(published["method"].iloc[best_at]) if best_at is not None else "",
                "gap": mine - best,
                "low": float(values.min()) if len(values) else math.nan,
            }
        )
    return pd.DataFrame(records, index=keys)


def _rank(row) -> str:
    return MISSING if math.isnan(row["rank"]) else f"{int(row['rank'])}/{int(row['n']) + 1}"


def describe_board(board, name: str = TEST_TABLE) -> str:
    """One line naming the table and how much of it has per-class values."""
    full = int(board[list(CLASS_COLUMNS)].notna().all(axis=1).sum())
    return (
        f"{len(board)} published entries in `results/reference/{name}.csv`, {full} with all 19 per-class "
        f"IoUs; per class, only the entries whose source gives that class"
    )


def caveats(ours: Mapping[str, Any]) -> list[str]:
    """Why a placement may not compare like with like: synthetic data, a split other than test."""
    notes = []
    if ours.get("dataset_kind") == "synthetic":
        notes.append("our row is on the synthetic dataset: not comparable with Cityscapes numbers")
    if ours.get("split") and ours["split"] != "test":
        notes.append(f"our row is on the {ours['split']} split; the leaderboard is the Cityscapes test set")
    return notes


def format_text(table, header: list[str]) -> str:
    """Aligned text: class, ours, rank among the published, best published (method), gap."""
    width = max(len(n) for n in table["name"])
    title = f"{'class':<{width}}  {'ours':>6}  {'rank':>6}  {'best':>6}  {'gap':>6}  best method"
    lines = [*header, "", title]
    for _, r in table.iterrows():
        lines.append(
            f"{r['name']:<{width}}  {pct(r['ours']):>6}  {_rank(r):>6}  {pct(r['best']):>6}  "
            f"{signed(r['gap']):>6}  {r['best_method'] or MISSING}"
        )
    return "\n".join(lines) + "\n"


def format_markdown(table) -> str:
    """The placement as a markdown table (rank r/N: r-th of the N = published + ours)."""
    body = [
        [
            r["name"],
            pct(r["ours"]),
            _rank(r),
            pct(r["low"]),
            pct(r["best"]),
            r["best_method"] or MISSING,
            signed(r["gap"]),
        ]
        for _, r in table.iterrows()
    ]
    headers = ["class", "ours", "rank", "lowest published", "best published", "best method", "gap (pp)"]
    return markdown_table(headers, body, right=(1, 2, 3, 4, 6))


def board_markdown(board) -> str:
    """The leaderboard itself, per class (`-` where the source gives no number), then its sources."""
    from bench.common.markdown import per_class_table

    parts = [
        per_class_table(
            (([r["method"], r["training_data"] or MISSING], r) for r in board.to_dict("records")),
            label_headers=("Method", "training data"),
        )
    ]
    body = [
        [
            r["method"],
            pct(r["iiou"]),
            pct(r["category_miou"]),
            pct(r["category_iiou"]),
            f"[{r['source']}]({r['url']})",
        ]
        for r in board.to_dict("records")
    ]
    parts.append(markdown_table(["Method", "iIoU", "cat. IoU", "cat. iIoU", "source"], body, right=(1, 2, 3)))
    return "\n".join(parts)


def val_markdown(frame) -> str:
    """Methods that publish only val numbers: mIoU, protocol, training data, source."""
    body = [
        [
            r["method"],
            r["protocol"],
            r["training_data"] or MISSING,
            pct(r["miou"], 2),
            f"[{r['source']}]({r['url']})",
        ]
        for r in frame.to_dict("records")
    ]
    return markdown_table(["Method", "protocol", "training data", "val mIoU", "source"], body, right=(3,))
