"""A finished sweep's figures: mIoU per (corruption, severity), per-corruption mean, mPC, rPC, as table+plot.

mPC is the mean over corruptions of each corruption's mean over its severities (Michaelis et al. 2019, as
Kamann & Rother and SegFormer report it; noises have 3 severities, the rest 5, so this is not the plain mean
over all cells); rPC = mPC / clean mIoU. Every mIoU is the evaluator's (cityscapesScripts' definition).

The robustness CSV gets one row per unit and one summary row (corruption "mPC") per sweep, each naming the
protocol, the corruption package, the seed and the sweep (its manifest digest): appended under a lock and
replaced atomically, and a sweep already in the file is not appended twice. `frames.csv` holds each unit's
per-frame scores (from the per-frame matrices its unit file keeps).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import atomic
from bench.common.numbers import nan_to_none
from bench.evaluation.frames import CSV_FIELDS
from bench.evaluation.scores import EvaluationResult
from bench.report.results import format_value, serialize
from bench.report.tables import markdown_table, pct
from bench.robustness.plan import Unit
from data.corruptions import CLEAN, CORRUPTIONS
from data.errors import UserError

HEATMAP_SIZE = (8.0, 7.0)  # inches at 100 dpi -> 800 x 700 px
DPI = 100
CSV_COLUMNS = (
    "sweep",
    "model",
    "checkpoint",
    "checkpoint_sha256",
    "dataset",
    "dataset_kind",
    "split",
    "n_images",
    "corruption",
    "severity",
    "miou",
    "iiou",
    "category_miou",
    "corruption_mean",
    "mpc",
    "rpc",
    "clean_miou",
    "protocol",
    "corruption_package",
    "seed",
    "mode",
    "precision",
    "device",
    "frames_per_s",
    "commit",
    "date",
)


@dataclass(frozen=True)
class Summary:
    """The sweep's figures as fractions (NaN where undefined)."""

    clean: float
    cells: dict[Unit, float]  # corrupted units only
    per_corruption: dict[str, float]
    mpc: float
    rpc: float


def summarize(results: Mapping[Unit, EvaluationResult]) -> Summary:
    """Figures of a sweep from each unit's result (the clean unit included)."""
    clean = results[Unit(CLEAN, 0)].miou
    cells = {u: r.miou for u, r in results.items() if u.corruption != CLEAN}
    per_corruption = {}
    for name in CORRUPTIONS:
        values = [v for u, v in cells.items() if u.corruption == name]
        if values:
            per_corruption[name] = float(np.mean(values))
    mpc = float(np.mean(list(per_corruption.values()))) if per_corruption else math.nan
    rpc = mpc / clean if clean and not math.isnan(clean) else math.nan
    return Summary(clean, cells, per_corruption, mpc, rpc)


def _severity_columns(summary: Summary) -> list[int]:
    return sorted({u.severity for u in summary.cells})


def markdown(summary: Summary, title: str = "") -> str:
    """The table: a row per corruption (mIoU % at each severity, their mean), then clean, mPC and rPC."""
    levels = _severity_columns(summary)
    headers = ["corruption", *(f"s{s}" for s in levels), "mean"]
    rows = []
    for name, mean in summary.per_corruption.items():
        cells = [
            pct(100 * summary.cells[Unit(name, s)]) if Unit(name, s) in summary.cells else "" for s in levels
        ]
        rows.append([name, *cells, pct(100 * mean)])
    text = f"{title}\n\n" if title else ""
    text += markdown_table(headers, rows, right=range(1, len(headers)))
    text += (
        f"\nclean mIoU {pct(100 * summary.clean)}, mPC {pct(100 * summary.mpc)}, "
        f"rPC {pct(100 * summary.rpc)}% (mPC: mean over corruptions of the mean over severities)\n"
    )
    return text


def heatmap(summary: Summary, out: str | os.PathLike, *, title: str = "") -> Path:
    """mIoU (%) per corruption x severity as a colour grid with the values written in; PNG, atomically."""
    from matplotlib.figure import Figure

    names = list(summary.per_corruption)
    levels = _severity_columns(summary)
    grid = np.full((len(names), len(levels)), np.nan)
    for i, name in enumerate(names):
        for j, s in enumerate(levels):
            grid[i, j] = 100 * summary.cells.get(Unit(name, s), math.nan)
    fig = Figure(figsize=HEATMAP_SIZE, dpi=DPI)
    ax = fig.add_axes((0.22, 0.1, 0.6, 0.8))
    image = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(len(levels)), [f"severity {s}" for s in levels], fontsize=8)
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        if not math.isnan(value):
            ax.text(
                j,
                i,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > 50 else "white",
            )
    ax.set_title(
        title
        or f"mIoU (%): clean {100 * summary.clean:.1f}, mPC {100 * summary.mpc:.1f}, "
        f"rPC {100 * summary.rpc:.1f}%",
        fontsize=10,
    )
    fig.colorbar(image, cax=fig.add_axes((0.85, 0.1, 0.03, 0.8)))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return atomic.write_bytes(out, buffer.getvalue())


def rows(
    summary: Summary, results: Mapping[Unit, EvaluationResult], run: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """CSV rows (percent): one per unit, clean first, then the summary row (corruption "mPC")."""
    common = {k: run.get(k, "") for k in CSV_COLUMNS} | {
        "date": run.get("date") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clean_miou": 100 * summary.clean,
        "mpc": 100 * summary.mpc,
        "rpc": 100 * summary.rpc,
    }
    out = []
    for unit in sorted(
        results,
        key=lambda u: (
            u.corruption != CLEAN,
            CORRUPTIONS.index(u.corruption) if u.corruption != CLEAN else -1,
            u.severity,
        ),
    ):
        result = results[unit]
        out.append(
            common
            | {
                "n_images": result.n_images,
                "corruption": unit.corruption,
                "severity": unit.severity,
                "miou": 100 * result.miou,
                "iiou": 100 * result.iiou,
                "category_miou": 100 * result.category_miou,
                "corruption_mean": 100 * summary.per_corruption.get(unit.corruption, math.nan),
            }
        )
    out.append(common | {"n_images": out[0]["n_images"], "corruption": "mPC", "miou": 100 * summary.mpc})
    return out


def publish(
    results: Mapping[Unit, EvaluationResult],
    out: str | os.PathLike,
    csv_path: str | os.PathLike,
    *,
    title: str,
    run_info: Mapping[str, Any],
) -> tuple[str, bool, int]:
    """Write a finished sweep's `robustness.md`, `robustness.png` and `summary.json` into `out` and append its
    rows to the CSV (once); (table, whether rows were appended, how many)."""
    out = Path(out)
    summary = summarize(results)
    table = markdown(summary, title)
    atomic.write_text(out / "robustness.md", table)
    heatmap(summary, out / "robustness.png")
    figures = {
        "clean_miou": summary.clean,
        "mpc": summary.mpc,
        "rpc": summary.rpc,
        "per_corruption": summary.per_corruption,
        "units": {u.name: r.miou for u, r in results.items()},
        **run_info,
    }
    atomic.write_text(
        out / "summary.json", json.dumps(nan_to_none(figures), indent=2, allow_nan=False) + "\n"
    )
    write_frames(results, out / "frames.csv")
    new_rows = rows(summary, results, run_info)
    return table, append_rows(csv_path, new_rows), len(new_rows)


def write_frames(results: Mapping[Unit, EvaluationResult], path: Path) -> Path:
    """`frames.csv`: one row a frame of each unit (corruption, severity, then `bench evaluate`'s frames.csv
    columns), from the per-frame matrices the unit files keep; a unit saved by a version that kept none
    has no rows (say so)."""
    header = ("corruption", "severity", *CSV_FIELDS)
    lines = [",".join(header)]
    missing = []
    for unit, result in results.items():
        if result.frames is None:
            missing.append(unit.name)
            continue
        for line in result.frames.csv_text().splitlines()[1:]:
            lines.append(f"{unit.corruption},{unit.severity},{line}")
    if missing:
        print(
            f"note: {len(missing)} unit(s) ({', '.join(missing[:3])}...) were saved without per-frame "
            f"scores (an older version): {path} leaves them out; delete their unit files to recompute them",
            file=sys.stderr,
        )
    return atomic.write_text(path, "\n".join(lines) + "\n")


def append_rows(csv_path: str | os.PathLike, new_rows: Sequence[Mapping[str, Any]]) -> bool:
    """Append a sweep's rows to the robustness CSV atomically under a lock; False (nothing written) when the
    file already holds that sweep. Columns: the file's, then any new ones."""
    csv_path = Path(csv_path)
    sweep = str(new_rows[0]["sweep"])
    with atomic.locked(csv_path):
        header, old = _read(csv_path)
        if any(r.get("sweep") == sweep for r in old):
            return False
        columns = header + [c for c in CSV_COLUMNS if c not in header]
        columns += [c for r in new_rows for c in r if c not in columns]
        formatted = [{k: format_value(v) for k, v in r.items()} for r in new_rows]
        atomic.write_text(csv_path, serialize(columns, old + formatted))
    return True


def check_csv(csv_path: str | os.PathLike) -> Path:
    """Before any work: the CSV to append to reads as a robustness CSV (or is new) and can be written."""
    csv_path = Path(csv_path)
    atomic.check_writable(csv_path, "--csv", folder=False)
    _read(csv_path)
    return csv_path


def _read(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not csv_path.is_file() or csv_path.stat().st_size == 0:
        return [], []
    try:
        reader = csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"), newline=""))
        header = list(reader.fieldnames or [])
        data = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(
            f"cannot read the robustness CSV {csv_path} ({exc}): fix it or pass another --csv"
        ) from None
    if "sweep" not in header or any(None in r or None in r.values() for r in data):
        raise UserError(
            f"{csv_path} is not a robustness CSV written by `bench robustness` (no 'sweep' column, or a row "
            f"with more or fewer fields than the header): pass another --csv"
        )
    return header, data
