"""Markdown text of scores: percentages rounded as papers round, signed deltas, GitHub tables and the
seed document's per-class table. Pure text formatting (no file I/O, no heavy imports), shared by
`bench evaluate` and the report layer (bench/report/tables.py), so every table reads alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bench.common.numbers import to_float
from data.labels import CLASS_NAMES, SHORT_NAMES

MISSING = "-"


def _round(value: float, digits: int) -> Decimal:
    """Half-up rounding of the shortest decimal text of `value`, as a paper rounds: 78.55 -> 78.6."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def pct(value: Any, digits: int = 1) -> str:
    """A percentage with `digits` decimals (half up); '-' when missing or NaN."""
    value = to_float(value)
    return MISSING if math.isnan(value) else f"{_round(value, digits):f}"


def signed(value: Any, digits: int = 1) -> str:
    """A delta in percentage points with its sign ('+1.2', '-0.4', '+0.0'); '-' when missing."""
    value = to_float(value)
    if math.isnan(value):
        return MISSING
    rounded = _round(value, digits)
    return f"{'-' if rounded < 0 else '+'}{abs(rounded):f}"


def number(value: Any, fmt: str = ".2f") -> str:
    """Any other float (images/s, seconds); '-' when missing."""
    value = to_float(value)
    return MISSING if math.isnan(value) else format(value, fmt)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()) -> str:
    """A GitHub markdown table; columns whose index is in `right` are right-aligned."""
    right = set(right)
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join(" ---: " if i in right else " --- " for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def spread(values: Mapping[str, Any], key: str) -> str:
    """A score with its seed spread, '78.1 ± 0.4', where the row has a std for it; else as `pct`."""
    std = to_float(values.get(f"{key}_std"))
    return pct(values.get(key)) if math.isnan(std) else f"{pct(values.get(key))} ± {pct(std)}"


def seeds_label(values: Mapping[str, Any]) -> str:
    """'n=3' for a row of three seeds; 'n=1' for one run (and rows written before seeds were recorded)."""
    n = to_float(values.get("n_seeds"))
    return f"n={1 if math.isnan(n) else int(n)}"


def per_class_table(
    rows: Iterable[tuple[Sequence[str], Mapping[str, Any]]],
    label_headers: Sequence[str] = ("Method",),
    *,
    seeds: bool = False,
) -> str:
    """Per-class table in the seed document's layout: label columns, the 19 short class names, mIoU.

    Each row is (labels, values) with values keyed by full class name and 'miou', in percent. With
    `seeds` (our result rows), a column says how many seeds each row averages and scores show mean ± std.
    """
    cell = spread if seeds else (lambda values, key: pct(values.get(key)))
    extra = ["seeds"] if seeds else []
    headers = [*label_headers, *extra, *SHORT_NAMES, "mIoU"]
    first = len(label_headers) + len(extra)
    body = [
        [
            *labels,
            *([seeds_label(values)] if seeds else []),
            *(cell(values, c) for c in CLASS_NAMES),
            cell(values, "miou"),
        ]
        for labels, values in rows
    ]
    return markdown_table(headers, body, right=range(first, len(headers)))
