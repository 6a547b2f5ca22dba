"""The seed's per-class table: the 19 short class names + mIoU, percent with one decimal.

One formatter for `evaluate`, `compare` and the README so the tables look the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from data.labels import SHORT_NAMES

MISSING = "-"


def percent(value: float | None, *, scale: float = 1.0) -> str:
    """`98.6`-style text of a score; value * scale is in percent; NaN/None (class absent) prints '-'."""
    if value is None or math.isnan(value):
        return MISSING
    return f"{value * scale:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, style: str = "markdown") -> str:
    """A markdown table, or ('text') columns aligned with spaces."""
    if style == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else ":---"
                                                                   for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    if style != "text":
        raise ValueError(f"style must be 'markdown' or 'text', not {style!r}")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def cells(line: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()

    return "\n".join(cells(line) for line in [header, *rows])


def class_table(rows: Sequence[tuple[str, Sequence[float], float]], *, scale: float = 100.0,
                style: str = "markdown", first_column: str = "") -> str:
    """Rows of (name, 19 per-class scores in train-ID order, mIoU) under the SHORT_NAMES + mIoU header.

    Scores are fractions by default (scale=100 prints percent); pass scale=1 for values already in percent.
    """
    for name, values, _ in rows:
        if len(values) != len(SHORT_NAMES):
            raise ValueError(f"row {name!r} has {len(values)} class values, expected {len(SHORT_NAMES)}")
    header = [first_column, *SHORT_NAMES, "mIoU"]
    body = [[name, *(percent(v, scale=scale) for v in values), percent(miou, scale=scale)]
            for name, values, miou in rows]
    return table(header, body, style=style)
