"""Result rows: the schema of `results/results.csv`, safe appends, and building a row from an evaluation.

One row per run. Appends hold an exclusive lock and replace the file atomically, so a crash or two runs at
once never lose or corrupt earlier rows. Old rows are kept as the exact strings they were written with;
a column added to the schema later is appended to the header and left empty in older rows.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import atomic
from bench.common.numbers import to_float
from bench.common.paths import PROJECT_ROOT
from bench.report.identity import IDENTITY_COLUMNS
from data.errors import UserError
from data.labels import CLASS_NAMES

if TYPE_CHECKING:
    from bench.evaluation import EvaluationResult

CLASS_COLUMNS: tuple[str, ...] = tuple(CLASS_NAMES)
"""Per-class IoU in percent, one column per evaluated class, named as in cityscapesScripts' JSON."""

RUN_COLUMNS = (
    "model",
    "preset",
    "options",
    "dataset",
    "dataset_kind",
    "split",
    "mode",
    "checkpoint",
    "train_steps",
    "recipe",
    "commit",
    "date",
)
METRIC_COLUMNS = (
    "miou",
    "iiou",
    "category_miou",
    "category_iiou",
    "n_images",
    "images_per_s",
    "latency_p50_ms",
    "latency_p95_ms",
    "peak_memory_mb",
    "eval_seconds",
)
QUALITY_COLUMNS = (
    "boundary_miou",
    "boundary_ratio",
    "ece",
    "mce",
    "nll",
    "brier",
    "temperature",
    "temperature_source",
    "ece_t",
    "nll_t",
)
"""Beyond mIoU: Boundary IoU (percent, with its band ratio) and calibration (ECE/MCE in percent, NLL in nats,
Brier in [0, 2], the temperature, whether it was fitted on this split ("fit", optimistic) or "given", and ECE
and NLL after it). Empty where the run had no logits or no boundary scoring."""
ENVIRONMENT_COLUMNS = ("device", "precision", "batch", "input_size", "threads", "tensorflow", "runtime")
"""Where the speed figures were measured: without these an images/s cannot be trusted or compared."""
TAIL_COLUMNS = ("run_dir", "reference", "notes")  # reference: the row id a published checkpoint should match
SCORE_COLUMNS: tuple[str, ...] = CLASS_COLUMNS + ("miou", "iiou", "category_miou", "category_iiou")
"""The scores a row carries, in percent; a row of several seeds holds their mean (bench/report/seeds.py)."""
STD_COLUMNS: tuple[str, ...] = tuple(f"{c}_std" for c in SCORE_COLUMNS)
SEED_COLUMNS: tuple[str, ...] = ("n_seeds", "seeds", *STD_COLUMNS)
"""Seed variance: how many seeds a row averages, which, and each score's standard deviation across them
(empty in single-seed rows and in rows written before these columns existed: both are n=1)."""
MEASURE_COLUMNS: tuple[str, ...] = ("aacc", "macc", "fwiou", "mdice", "mf1", "mprecision", "mrecall")
"""mmsegmentation's and detectron2's other measures from the same confusion matrix, in percent
(bench/evaluation/measures.py); empty in rows written before these columns existed."""
_MEASURE_KEYS = dict(
    zip(MEASURE_COLUMNS, ("aAcc", "mAcc", "fwIoU", "mDice", "mF1", "mPrecision", "mRecall"), strict=True)
)
COLUMNS: tuple[str, ...] = (
    RUN_COLUMNS
    + CLASS_COLUMNS
    + METRIC_COLUMNS
    + QUALITY_COLUMNS
    + ENVIRONMENT_COLUMNS
    + TAIL_COLUMNS
    + SEED_COLUMNS
    + MEASURE_COLUMNS
    + IDENTITY_COLUMNS
)
"""The fixed column order of results.csv; unknown keys of a row are appended after these."""

PERCENT_COLUMNS = frozenset(
    SCORE_COLUMNS + STD_COLUMNS + MEASURE_COLUMNS + ("boundary_miou", "ece", "mce", "ece_t")
)
DATASET_KINDS = ("synthetic", "real")

_STATS_COLUMNS = ("n_images", "images_per_s", "latency_p50_ms", "latency_p95_ms", "peak_memory_mb")


def format_value(value: Any) -> str:
    """The CSV text of a value: '' for missing/NaN, floats with 6 significant digits, the rest as str."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        value = float(value)
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _read_table(csv_path: Path) -> tuple[list[str], list[dict[str, str]], list[int]]:
    """Header, rows (raw strings, nothing reformatted) and each row's line number of a results file.

    A file that is not UTF-8 CSV, or a row with more or fewer fields than the header, is a UserError naming
    the file and the line: a broken file is never read as if it were shorter.
    """
    if not csv_path.is_file() or csv_path.stat().st_size == 0:
        return [], [], []
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read results file {csv_path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{csv_path} is not UTF-8 text (line {line} has the byte {data[exc.start : exc.start + 1]!r}): "
            f"fix that line, or restore the file with `git checkout -- {csv_path}`"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = list(reader.fieldnames or [])
        if header and "model" not in header:
            raise UserError(
                f"{csv_path} is not a results file: its header ({', '.join(header[:4])}...) has no "
                f"'model' column; pass results/results.csv or a file written by `bench run`"
            )
        rows, lines = [], []
        for row in reader:
            if None in row:
                raise UserError(
                    f"{csv_path} line {reader.line_num} has more fields than the header: fix or remove "
                    f"that line (earlier rows are intact)"
                )
            if any(v is None for v in row.values()):
                count = sum(v is not None for v in row.values())
                raise UserError(
                    f"{csv_path} line {reader.line_num} has {count} of the header's {len(header)} fields: "
                    f"fix or remove that line (earlier rows are intact)"
                )
            rows.append(dict(row))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise UserError(
            f"{csv_path} line {reader.line_num} is not valid CSV ({exc}): fix that line"
        ) from None
    return header, rows, lines


def merged_columns(*headers: list[str] | tuple[str, ...], schema: tuple[str, ...] = COLUMNS) -> list[str]:
    """Schema columns first (in schema order) when present anywhere, then any others by first appearance."""
    seen = {c for h in headers for c in h}
    columns = [c for c in schema if c in seen]
    for header in headers:
        columns += [c for c in header if c not in columns]
    return columns


def serialize(header: list[str], rows: list[Mapping[str, str]]) -> str:
    """CSV text with a fixed dialect (',' and '\\n'), missing cells empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in header})
    return out.getvalue()


def append_row(
    csv_path: str | os.PathLike,
    row: Mapping[str, Any],
    *,
    markdown: bool = True,
    columns: tuple[str, ...] = COLUMNS,
) -> Path:
    """Append one result row to `csv_path` atomically under a lock, then re-render the markdown twin.

    Columns are the union of the file's header, the schema (`columns`: results.csv's by default) and the
    row's keys (see `merged_columns`), so a new column never breaks an old file. With `markdown`,
    `results.md` next to the CSV is rewritten too.
    """
    schema = columns
    csv_path = Path(csv_path)
    new = {k: format_value(v) for k, v in row.items()}
    with atomic.locked(csv_path):
        header, rows, _ = _read_table(csv_path)
        columns = merged_columns(header, schema, list(new), schema=schema)
        rows.append(new)
        text = serialize(columns, rows)
        atomic.write_text(csv_path, text)
        if markdown:
            from bench.report.tables import render_results_markdown

            atomic.write_text(csv_path.with_suffix(".md"), render_results_markdown(read_rows(csv_path)))
    return csv_path


def read_rows(csv_path: str | os.PathLike, *, missing_ok: bool = False):
    """The rows of a results file as a pandas DataFrame (text columns as '', numbers as floats, NaN empty).

    Every schema column is present, also in files written before a column existed. A cell of a number
    column that is not a number (or a percentage outside 0..100) is a UserError naming file, line and
    column: it is never shown as a missing value.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    if csv_path.exists() and not csv_path.is_file():
        raise UserError(f"results file {csv_path} is not a file: pass the path of a results CSV")
    if not csv_path.is_file():
        if missing_ok:
            return pd.DataFrame(columns=list(COLUMNS))
        raise UserError(
            f"results file {csv_path} does not exist: run `make bench` (or `python -m bench "
            f"run`) first, or pass the right path"
        )
    header, rows, lines = _read_table(csv_path)
    columns = merged_columns(header, COLUMNS)
    frame = pd.DataFrame([{c: r.get(c, "") for c in columns} for r in rows], columns=columns, dtype=object)
    for column in columns:
        if column in NUMERIC_COLUMNS:
            frame[column] = _numbers(frame[column], column, csv_path, lines)
        else:
            frame[column] = frame[column].fillna("").astype(str)
    return frame


NUMERIC_COLUMNS = frozenset(
    PERCENT_COLUMNS
    | set(METRIC_COLUMNS)
    | (set(QUALITY_COLUMNS) - {"temperature_source"})
    | {"train_steps", "batch", "threads", "n_seeds"}
)


def _numbers(cells, column: str, csv_path: Path, lines: list[int]):
    """A number column as floats ('' is NaN); anything else that is not a plausible value is an error."""
    import numpy as np
    import pandas as pd

    text = cells.fillna("").astype(str).str.strip()
    values = pd.to_numeric(text.replace("", None), errors="coerce").astype(float)
    bad = (text != "") & values.isna() & (text.str.lower() != "nan")
    bad |= np.isinf(values) | (values < 0)
    if column in PERCENT_COLUMNS:
        bad |= values > 100
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        what = "a percentage (0..100)" if column in PERCENT_COLUMNS else "a non-negative number"
        raise UserError(
            f"{csv_path} line {lines[i]}: column {column} is {cells.iloc[i]!r}, not {what}: fix or "
            f"remove that row"
        )
    return values


def check_results_file(csv_path: str | os.PathLike) -> Path:
    """Before a run's work: the results file it will append to reads cleanly (or is new) and is writable.

    `bench run` calls this first, so a broken results.csv stops it before minutes of prediction.
    """
    csv_path = Path(csv_path)
    read_rows(csv_path, missing_ok=True)
    atomic.check_writable(csv_path, "results file", folder=False)
    return csv_path


def _percent(value: Any) -> float:
    return to_float(value) * 100.0


def row_from_result(
    result: EvaluationResult,
    *,
    model: str,
    dataset: str,
    dataset_kind: str,
    split: str,
    mode: str = "whole",
    checkpoint: str | os.PathLike = "",
    preset: str | None = None,
    options: Mapping[str, Any] | str | None = None,
    train_steps: int | None = None,
    recipe: str | None = None,
    predict_stats: Mapping[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
    notes: str = "",
    reference_id: str = "",
    commit: str | None = None,
    date: str | None = None,
    seed: int | None = None,
    identity: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A results.csv row from an evaluation result (fractions in [0, 1], shown in percent) plus the run's
    metadata. `predict_stats` is the dict `bench.inference.predict.predict` returns (images_per_s, ..., and
    where it ran: device, precision, batch, input_size, threads, tensorflow).
    `reference_id` (column "reference"): the reference row this run should reproduce (a recognised
    published checkpoint). One run is one seed (n_seeds 1, no std); `seed`, when known, is recorded.
    `identity` (bench/report/identity.py `dataset_identity`): what was scored; its `dataset` replaces
    `dataset`, and `row` (the row's name) defaults to the run folder's name."""
    if dataset_kind not in DATASET_KINDS:
        raise UserError(f"dataset_kind must be one of {', '.join(DATASET_KINDS)}, not {dataset_kind!r}")
    class_iou = result.class_iou
    if isinstance(options, Mapping):
        options = ";".join(f"{k}={options[k]}" for k in sorted(options))
    stats = dict(predict_stats or {})
    row: dict[str, Any] = {
        "model": model,
        "preset": preset or "",
        "options": options or "",
        "dataset": dataset,
        "dataset_kind": dataset_kind,
        "split": split,
        "mode": mode,
        "checkpoint": str(checkpoint or ""),
        "train_steps": "" if train_steps is None else int(train_steps),
        "recipe": recipe or "",
        "commit": commit if commit is not None else git_commit(),
        "date": date or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    row.update({name: _percent(class_iou.get(name)) for name in CLASS_COLUMNS})
    row.update(
        {
            "miou": _percent(result.miou),
            "iiou": _percent(result.iiou),
            "category_miou": _percent(result.category_miou),
            "category_iiou": _percent(result.category_iiou_mean),
        }
    )
    row["n_images"] = stats.get("n_images", result.n_images)
    for key in _STATS_COLUMNS[1:]:
        row[key] = stats.get(key)
    row["eval_seconds"] = result.seconds
    row.update(dict.fromkeys(QUALITY_COLUMNS, ""))
    if result.boundary is not None:
        row.update(result.boundary.columns())
    if result.calibration is not None:
        row.update(result.calibration.columns())
    for key in ENVIRONMENT_COLUMNS:
        row[key] = stats.get(key)
    row["run_dir"] = _relative(run_dir) if run_dir else ""
    row["reference"] = reference_id
    row["notes"] = notes
    row["n_seeds"] = 1
    row["seeds"] = "" if seed is None else str(seed)
    row.update(dict.fromkeys(STD_COLUMNS))
    measures = result.measures
    row.update({column: _percent(measures[key]) for column, key in _MEASURE_KEYS.items()})
    row.update(dict.fromkeys(IDENTITY_COLUMNS, ""))
    row.update(identity or {})
    if not row["row"] and run_dir:
        row["row"] = Path(run_dir).name
    return row


def _relative(path: str | os.PathLike) -> str:
    """A path relative to the project root when inside it (rows stay valid in any checkout)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


TOOL_OUTPUTS = ("results/",)
"""What the tool itself rewrites (rows, tables, plots): changes there are results, not code, and do not
mark the commit dirty. README.md counts as tool output only between its results markers."""


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """Short hash of HEAD, with '+dirty' when tracked code differs from it; 'unknown' outside git.

    The tool's own edits (`TOOL_OUTPUTS`, the README results section that `bench readme` regenerates) are
    not changes to code: after one `make bench` the next row would otherwise name every commit dirty."""
    cwd = Path(cwd) if cwd is not None else PROJECT_ROOT
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    changed = [entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3]
    dirty = status.returncode == 0 and any(not _tool_output(cwd, path) for path in changed)
    return head.stdout.strip() + ("+dirty" if dirty else "")


def _tool_output(cwd: Path, path: str) -> bool:
    """Whether a changed path is only what the tool writes (see `TOOL_OUTPUTS`)."""
    if path.startswith(TOOL_OUTPUTS):
        return True
    if path != "README.md":
        return False
    from bench.report.readme_markers import without_section

    try:
        old = subprocess.run(
            ["git", "show", "HEAD:README.md"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        new = (cwd / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, subprocess.SubprocessError):
        return False
    return old.returncode == 0 and without_section(old.stdout) == without_section(new)
