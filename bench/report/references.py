"""Published reference tables in `results/reference/NAME.csv`: per-class IoU and mIoU in percent.

Every row carries its source, split and protocol, so a comparison always says what it compares against.
Cells a source does not publish are empty (NaN), never guessed.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from bench.common.paths import REFERENCE_DIR
from bench.report.results import CLASS_COLUMNS
from data.errors import UserError

DEFAULT_REFERENCE = "pspnet-paper-test"
"""The seed document's row: PSPNet on the Cityscapes test set, mIoU 80.2."""

REQUIRED_COLUMNS = ("method", "split", "protocol", *CLASS_COLUMNS, "miou", "source", "url", "notes")
NUMERIC_COLUMNS = (*CLASS_COLUMNS, "miou", "iiou", "category_miou", "category_iiou")


def available(reference_dir: str | os.PathLike = REFERENCE_DIR) -> list[str]:
    """Names of the reference tables (file stems): the default (seed) table first, then sorted."""
    names = sorted(p.stem for p in Path(reference_dir).glob("*.csv"))
    return sorted(names, key=lambda n: n != DEFAULT_REFERENCE)


def load(name: str, reference_dir: str | os.PathLike = REFERENCE_DIR):
    """The reference table `name` as a DataFrame (numeric columns as floats, NaN where unpublished)."""
    import pandas as pd

    reference_dir = Path(reference_dir)
    path = reference_dir / f"{name}.csv"
    if not path.is_file():
        names = ", ".join(available(reference_dir)) or "none"
        raise UserError(f"unknown reference {name!r}: no {path}; available: {names}")
    frame = pd.DataFrame(_read_cells(path))
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"reference table {path} lacks column(s) {', '.join(missing)}: every reference row "
            f"needs per-class IoUs, miou, source, url, split, protocol and notes"
        )
    if frame.empty:
        raise UserError(f"reference table {path} has no rows")
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            values = pd.to_numeric(frame[column].replace("", None), errors="coerce").astype(float)
            bad = (frame[column].str.strip() != "") & ~values.between(0, 100)
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise UserError(
                    f"reference table {path} row {i + 1} (line {i + 2}): {column} is "
                    f"{frame[column].iloc[i]!r}, not a percentage (0..100): fix that cell"
                )
            frame[column] = values
    return frame


def _read_cells(path: Path) -> dict[str, list[str]]:
    """The table's cells as text, column by column; a file that is not UTF-8 CSV with one field per header
    column on every line is a UserError naming the line."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"reference table {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read reference table {path}: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
        rows = []
        for row in reader:
            if row and len(row) != len(header):
                raise UserError(
                    f"reference table {path} line {reader.line_num} has {len(row)} fields, the header "
                    f"{len(header)}: fix that line"
                )
            if row:
                rows.append(row)
    except csv.Error as exc:
        raise UserError(f"reference table {path} line {reader.line_num} is not valid CSV: {exc}") from None
    return {name: [r[i] for r in rows] for i, name in enumerate(header)}


def load_all(reference_dir: str | os.PathLike = REFERENCE_DIR):
    """All reference rows, with a `reference` column naming the table each came from."""
    import pandas as pd

    frames = [load(name, reference_dir).assign(reference=name) for name in available(reference_dir)]
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*REQUIRED_COLUMNS, "reference"])
    )


def select(name: str, row: int = 0, reference_dir: str | os.PathLike = REFERENCE_DIR) -> dict:
    """One reference row: the `row`-th of table `name`, or the row whose `id` is `name` (tables of
    published checkpoints give each row an id, which result rows of those checkpoints name)."""
    reference_dir = Path(reference_dir)
    if (reference_dir / f"{name}.csv").is_file():
        return pick(load(name, reference_dir), row, name).to_dict() | {"reference": name}
    frame = load_all(reference_dir)
    if "id" in frame.columns:
        found = frame[frame["id"] == name]
        if len(found) == 1:
            return found.iloc[0].to_dict()
    names = ", ".join(available(reference_dir)) or "none"
    raise UserError(
        f"unknown reference {name!r}: no table {reference_dir / (name + '.csv')} and no row with that id; "
        f"available: {names}"
    )


def pick(frame, row: int = 0, name: str = "reference"):
    """One row of a reference table by position, with a clear error when out of range."""
    if not -len(frame) <= row < len(frame):
        raise UserError(f"reference {name} has {len(frame)} row(s); --reference-row {row} is out of range")
    return frame.iloc[row]
