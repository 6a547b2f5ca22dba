"""Markdown text of scores: percentages rounded as papers round, signed deltas, GitHub tables and the
seed document's per-class table. Pure text formatting (no file I/O, no heavy imports), shared by
`bench evaluate` and the report layer (bench/report/tables.py), so every table reads alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bench.numbers import to_float
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


def per_class_table(
    rows: Iterable[tuple[Sequence[str], Mapping[str, Any]]], label_headers: Sequence[str] = ("Method",)
) -> str:
    """Per-class table in the seed document's layout: label columns, the 19 short class names, mIoU.

    Each row is (labels, values) with values keyed by full class name and 'miou', in percent.
    """
    headers = [*label_headers, *SHORT_NAMES, "mIoU"]
    first = len(label_headers)
    body = [
        [*labels, *(pct(values.get(c)) for c in CLASS_NAMES), pct(values.get("miou"))]
        for labels, values in rows
    ]
    return markdown_table(headers, body, right=range(first, len(headers)))
