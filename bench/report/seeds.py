"""Seed variance: one result row from the rows of the same benchmark run with several seeds.

Is a difference between two rows larger than seed noise? A row of n seeds holds the mean of every score
(`SCORE_COLUMNS`) and its sample standard deviation across the seeds (`<score>_std`, ddof 1), with
`n_seeds` and `seeds`; a single run is n=1 without std, and so is every row written before these columns
existed. Only the numbers: training or evaluating once per seed is `bench run --seeds`.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common.numbers import to_float
from bench.common.ranges import SEED
from bench.report.results import METRIC_COLUMNS, QUALITY_COLUMNS, SCORE_COLUMNS, _relative, append_row
from data.errors import UserError

SAME_COLUMNS = ("model", "preset", "options", "dataset", "dataset_kind", "split", "mode", "recipe")
"""What every seed of one row must share: a row never averages different benchmarks."""
JOINED_COLUMNS = ("checkpoint", "run_dir", "commit")
"""Per seed, and kept: the distinct values joined with '; ' (one value when all seeds agree)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2): non-negative integers, each once; anything else is a UserError."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(
            f"--seeds {text!r}: give comma-separated non-negative integers, e.g. --seeds 0,1,2"
        ) from None
    if not seeds or not all(SEED.contains(s) for s in seeds):
        raise UserError(f"--seeds {text!r}: each seed is {SEED}, e.g. --seeds 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r} repeats a seed: each seed is trained once")
    return seeds


def seed_count(row: Mapping[str, Any]) -> int:
    """How many seeds a row averages: its n_seeds, else 1 (single runs and rows older than the column)."""
    n = to_float(row.get("n_seeds"))
    return 1 if math.isnan(n) else int(n)


def mean_std(values: Iterable[Any]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) of the values that are numbers; NaN where there are
    none (mean) or fewer than two (std). A class absent from one seed's ground truth and predictions
    (NaN, as cityscapesScripts scores it) is left out of that class's mean, not counted as 0."""
    xs = [v for v in (to_float(x) for x in values) if not math.isnan(v)]
    if not xs:
        return math.nan, math.nan
    mean = math.fsum(xs) / len(xs)
    if len(xs) < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def aggregate(rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """The row of a run over `seeds`, from its per-seed rows (in seed order).

    Scores: mean and std. Speed figures (images/s, latency, eval time), Boundary IoU and calibration: the
    mean. Run metadata: from the
    first row, except checkpoints, run folders and commits, which are joined. Rows of different
    benchmarks (model, dataset, split, mode, ...) are refused.
    """
    if not rows:
        raise ValueError("aggregate needs at least one per-seed row")
    if len(rows) != len(seeds):
        raise ValueError(f"{len(rows)} rows for {len(seeds)} seeds")
    first = rows[0]
    for column in SAME_COLUMNS:
        values = {str(r.get(column, "") or "") for r in rows}
        if len(values) > 1:
            raise UserError(
                f"the rows of seeds {', '.join(map(str, seeds))} differ in {column} "
                f"({', '.join(sorted(values))}): only runs of one benchmark are averaged"
            )
    row = dict(first)
    for column in JOINED_COLUMNS:
        values = list(dict.fromkeys(str(r.get(column, "") or "") for r in rows))
        row[column] = "; ".join(v for v in values if v)
    for column in SCORE_COLUMNS:
        row[column], row[f"{column}_std"] = mean_std(r.get(column) for r in rows)
    for column in METRIC_COLUMNS:
        if column not in SCORE_COLUMNS and column != "n_images":
            row[column] = mean_std(r.get(column) for r in rows)[0]
    for column in QUALITY_COLUMNS:  # Boundary IoU and calibration: the mean over the seeds that have them
        if column != "temperature_source":
            row[column] = mean_std(r.get(column) for r in rows)[0]
    row["n_seeds"] = len(rows)
    row["seeds"] = ",".join(map(str, seeds))
    if len(rows) > 1:
        note = f"mean and sample std over seeds {row['seeds']}"
        row["notes"] = f"{row['notes']}; {note}" if row.get("notes") else note
    return row


def append_aggregate(
    csv_path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]
) -> dict[str, Any]:
    """Append the aggregated row to `csv_path` (and its results.md) and return it."""
    row = aggregate(rows, seeds)
    append_row(Path(csv_path), row)
    return row


def sweep(
    run_one: Callable[[int, Path], Mapping[str, Any]],
    seeds: Sequence[int],
    *,
    model: str,
    results_csv: str | os.PathLike,
    runs_dir: str | os.PathLike,
    readme: str | os.PathLike | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Run a benchmark once per seed, then append one row: the mean and std across the seeds.

    `run_one(seed, seeds_csv)` runs one seed and returns its row, appending it to `seeds_csv` (not to
    `results_csv`) and leaving the README alone. The sweep's folder under `runs_dir` holds `seeds.csv`
    (one row per seed, naming each seed's own run folder) and `row.json` (the aggregated row, which
    `bench compare` reads); the README is regenerated once, at the end.
    """
    from bench.report.readme import update_readme
    from bench.report.results import check_results_file
    from bench.report.run_folder import new_run_dir, write_json

    check_results_file(results_csv)  # a broken results file stops the sweep before any seed runs
    folder = new_run_dir(model, "seeds-" + "-".join(map(str, seeds)), root=runs_dir)
    try:  # a sweep that fails (a seed's run, Ctrl-C) leaves no half-made sweep folder and no row
        rows = []
        for i, seed in enumerate(seeds, 1):
            print(f"seed {seed} ({i} of {len(seeds)})")
            rows.append(dict(run_one(seed, folder / "seeds.csv")))
        row = aggregate(rows, seeds)
        row["run_dir"] = _relative(folder)
        write_json(folder / "row.json", row)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    append_row(Path(results_csv), row)
    print(
        f"seeds {row['seeds']}: mIoU {row['miou']:.2f} ± {row['miou_std']:.2f} (mean ± sample std, "
        f"n={row['n_seeds']}); per seed: {folder / 'seeds.csv'}"
    )
    if readme is not None:
        kwargs = {"reference": reference} if reference else {}
        update_readme(readme, results_csv, **kwargs)
    return row
