"""Markdown tables for results in the seed document's per-class format (short names, percent, one decimal).

Shared by `results/results.md`, the README section and `bench compare --markdown`, so all three read alike.
Pure text formatting: no file I/O, no heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bench.numbers import to_float
from data.labels import CLASS_NAMES, SHORT_NAMES

MISSING = "-"
SYNTHETIC_NOTE = (
    "Rows marked *synthetic* ran on the generated synthetic dataset: they check the harness "
    "end to end and are not comparable with numbers on real Cityscapes."
)


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


def dataset_label(dataset: str, kind: str) -> str:
    """How a row's dataset is shown: synthetic rows are marked so nobody reads them as Cityscapes numbers."""
    dataset = dataset or "?"
    return f"{dataset} (*synthetic*)" if kind == "synthetic" else dataset


def method_label(model: str, preset: str = "") -> str:
    """Model name with its preset, e.g. 'pspnet [cpu]'."""
    return f"{model} [{preset}]" if preset else model


def where_it_ran(row: Mapping[str, Any]) -> str:
    """The conditions of a row's images/s in one cell, e.g. 'CPU: AMD EPYC, 2 threads, bf16, batch 1,
    256x512, TF 2.21.0'; '-' for rows written before these were recorded."""

    def text(key: str) -> str:
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    parts = [
        text("device"),
        f"{text('threads')} threads" if text("threads") else "",
        text("precision"),
        f"batch {text('batch')}" if text("batch") else "",
        text("input_size"),
        f"TF {text('tensorflow')}" if text("tensorflow") else "",
    ]
    return ", ".join(p for p in parts if p) or MISSING


def render_results_markdown(frame) -> str:
    """`results/results.md`: every row of results.csv, per-class table then run details."""
    parts = [
        "# Results\n",
        "Generated from `results.csv` by `bench.report.results.append_row`; do not edit by hand. "
        "IoU in percent (cityscapesScripts definitions).\n",
    ]
    if len(frame) == 0:
        parts.append("No results yet: run `make bench MODEL=pspnet`.\n")
        return "\n".join(parts)
    records = frame.to_dict("records")
    if any(r.get("dataset_kind") == "synthetic" for r in records):
        parts.append(SYNTHETIC_NOTE + "\n")
    parts.append("## Per-class IoU (%)\n")
    parts.append(
        per_class_table(
            (
                (
                    [
                        str(i),
                        method_label(r["model"], r.get("preset", "")),
                        dataset_label(r["dataset"], r.get("dataset_kind", "")),
                        r.get("split", ""),
                    ],
                    r,
                )
                for i, r in enumerate(records)
            ),
            label_headers=("#", "Method", "dataset", "split"),
            seeds=True,
        )
    )
    parts.append("## Runs\n")
    headers = [
        "#",
        "date",
        "model",
        "options",
        "mode",
        "train steps",
        "checkpoint",
        "commit",
        "mIoU",
        "iIoU",
        "cat. mIoU",
        "images/s",
        "ran on",
        "eval s",
    ]
    body = [
        [
            str(i),
            r.get("date", ""),
            method_label(r["model"], r.get("preset", "")),
            r.get("options", "") or MISSING,
            r.get("mode", ""),
            number(r.get("train_steps"), ".0f"),
            r.get("checkpoint", "") or MISSING,
            r.get("commit", ""),
            spread(r, "miou"),
            spread(r, "iiou"),
            spread(r, "category_miou"),
            number(r.get("images_per_s")),
            where_it_ran(r),
            number(r.get("eval_seconds")),
        ]
        for i, r in enumerate(records)
    ]
    parts.append(markdown_table(headers, body, right=(0, 5, 8, 9, 10, 11, 13)))
    return "\n".join(parts)
