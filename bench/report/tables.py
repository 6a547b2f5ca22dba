"""Markdown tables for results in the seed document's per-class format (short names, percent, one decimal).

Shared by `results/results.md`, the README section and `bench compare --markdown`, so all three read alike.
Pure text formatting: no file I/O, no heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench.common.markdown import MISSING, markdown_table, number, pct, per_class_table, spread

SYNTHETIC_NOTE = (
    "Rows marked *synthetic* ran on the generated synthetic dataset: they check the harness "
    "end to end and are not comparable with numbers on real Cityscapes."
)


def dataset_label(dataset: str, kind: str) -> str:
    """How a row's dataset is shown: synthetic rows are marked so nobody reads them as Cityscapes numbers."""
    dataset = dataset or "?"
    return f"{dataset} (*synthetic*)" if kind == "synthetic" else dataset


def frames_label(row: Mapping[str, Any]) -> str:
    """A row's number of frames, with `(partial)` when it is not a whole split (bench/report/identity.py)
    and `HxW` when known: '500', '1 (partial, 128x256)'; older rows say their scope was not recorded."""
    n = number(row.get("n_images"), ".0f")
    size = str(row.get("frame_size") or "")
    if size == "nan":
        size = ""
    scope = str(row.get("scope", "") or "")
    if scope == "full":
        return n
    what = "partial" if scope == "partial" else "scope not recorded"  # rows older than the column
    return f"{n} ({', '.join(p for p in (what, size) if p and p != 'nan')})"


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
        text("runtime") if text("runtime") not in ("", "tensorflow") else "",  # e.g. litert
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
                        frames_label(r),
                    ],
                    r,
                )
                for i, r in enumerate(records)
            ),
            label_headers=("#", "Method", "dataset", "split", "n frames"),
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
        "bIoU",
        "ECE",
        "NLL",
        "T",
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
            pct(r.get("boundary_miou")),
            pct(r.get("ece")),
            number(r.get("nll"), ".3f"),
            number(r.get("temperature")),
            number(r.get("images_per_s")),
            where_it_ran(r),
            number(r.get("eval_seconds")),
        ]
        for i, r in enumerate(records)
    ]
    parts.append(markdown_table(headers, body, right=(0, 5, 8, 9, 10, 11, 12, 13, 14, 15, 17)))
    parts.append(
        "bIoU: mean Boundary IoU (%); ECE: top-1 expected calibration error, 15 bins (%); NLL in nats; "
        "T: the temperature of least NLL (fitted on the scored split unless given: optimistic). "
        "`-`: not measured (no logits, or no boundary scoring).\n"
    )
    return "\n".join(parts)
