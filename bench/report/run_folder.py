"""Everything a finished run leaves behind: its folder under results/runs/, its row, the README.

`report_run` is the one call `bench run` makes after evaluating: it creates the run folder, writes the
cityscapesScripts JSON, the confusion matrix and the plots, appends the row to results.csv (and results.md),
and regenerates the README section. The pieces are separate functions for reuse and tests.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import atomic
from bench.common.numbers import nan_to_none
from bench.common.paths import RESULTS_CSV, RUNS_DIR
from bench.report import plots, references
from bench.report.results import append_row, row_from_result

if TYPE_CHECKING:
    from bench.evaluation import EvaluationResult

N_SAMPLES = 3


def slug(text: str) -> str:
    """File-name-safe text: 'mypkg.mod:build' -> 'mypkg.mod-build', a path -> its last part."""
    text = Path(str(text)).name if os.sep in str(text) else str(text)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.") or "x"


def new_run_dir(
    model: str, dataset: str, *, root: str | os.PathLike = RUNS_DIR, when: datetime | None = None
) -> Path:
    """Create and return `root/{date}_{model}_{dataset}/` (UTC); '-2', '-3', ... if it already exists."""
    when = when or datetime.now(timezone.utc)
    base = f"{when.strftime('%Y%m%dT%H%M%SZ')}_{slug(model)}_{slug(dataset)}"
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"too many run folders named {base} under {root}")


def spread(items: Sequence, n: int = N_SAMPLES) -> list:
    """Up to `n` of `items`, spread evenly (all of them when there are no more than `n`)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def pick_samples(
    gt_root: str | os.PathLike, split: str, pred_dir: str | os.PathLike, n: int = N_SAMPLES
) -> list[tuple[Path, Path, Path]]:
    """Up to `n` (image, GT labelIds, prediction) triples of the split, spread evenly, that all exist."""
    from data.cityscapes import list_samples

    pred_dir = Path(pred_dir)
    triples = []
    for s in list_samples(gt_root, split):
        pred = pred_dir / f"{s.key}_leftImg8bit.png"
        if s.image is not None and pred.is_file():
            triples.append((s.image, s.label_ids, pred))
    return spread(triples, n)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Pretty, key-sorted JSON without NaN (strict JSON), written atomically."""
    return atomic.write_text(
        path, json.dumps(nan_to_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    )


def write_run_folder(
    run_dir: str | os.PathLike,
    result: EvaluationResult,
    *,
    row: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
    reference_label: str = "reference",
    samples: Sequence[tuple[Any, Any, Any]] = (),
    pred_ids: str = "label",
) -> dict[str, Path]:
    """Write a run's files into `run_dir` and return them by kind.

    result.json (cityscapesScripts keys, plus `boundaryIoU` and `calibration` when measured, `measures`,
    `frames` and `cities`), frames.csv (one row a frame), row.json (our
    results.csv row, if given), confusion.csv and confusion.png (when the result has a confusion matrix),
    iou_bars.png (against `reference`, a row in percent), samples.png (image / GT / prediction for
    `samples`), reliability.png (when the result carries calibration).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["json"] = result.write_json(run_dir / "result.json")
    ours = dict(row) if row is not None else _percent_row(result)
    if row is not None:
        files["row"] = write_json(run_dir / "row.json", dict(row))
    if result.frames is not None:
        files["frames"] = result.frames.write_csv(run_dir / "frames.csv")
    files["confusion_csv"] = plots.confusion_csv(result.confusion, run_dir / "confusion.csv")
    files["confusion_png"] = plots.confusion_heatmap(result.confusion, run_dir / "confusion.png")
    label = str(ours.get("model", "ours"))
    files["bars"] = plots.iou_bars(
        ours, run_dir / "iou_bars.png", reference=reference, ours_label=label, reference_label=reference_label
    )
    if samples:
        files["samples"] = plots.sample_grid(samples, run_dir / "samples.png", pred_ids=pred_ids)
    calibration = result.calibration
    if calibration is not None and calibration.available:
        files["reliability"] = plots.reliability_diagram(
            calibration.details["bins"],
            run_dir / "reliability.png",
            after=calibration.details.get("binsAfterTemperature"),
            note=(
                f"ECE {100 * calibration.ece:.2f}% -> {100 * calibration.ece_t:.2f}% after T = "
                f"{calibration.temperature:.3g} ({calibration.temperature_source}), "
                f"NLL {calibration.nll:.3f} -> {calibration.nll_t:.3f}"
            ),
        )
    return files


def write_html_report(
    run_dir: Path,
    result: EvaluationResult,
    reference: Mapping[str, Any] | None,
    gt_root: str | os.PathLike | None,
    split: str,
    pred_dir: str | os.PathLike | None,
    pred_ids: str = "label",
    predictions: Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """report.html with its worst-frame pictures and `report/context.json` (the reference row), so that
    `bench report RUN_DIR` can rebuild the page from the folder alone."""
    from bench.report.frame_images import loader, write_worst_frames
    from bench.report.html_page import CONTEXT_JSON, write_report

    (Path(run_dir) / "report").mkdir(parents=True, exist_ok=True)
    context = {"reference": dict(reference or {}), "title": title, "settings": dict(settings or {})}
    files = {"context": write_json(Path(run_dir) / CONTEXT_JSON, context)}
    if result.frames is not None and len(result.frames):
        samples = []
        if gt_root is not None:
            from data.cityscapes import list_samples

            samples = list_samples(gt_root, split)
        load = loader(samples, predictions, pred_dir, pred_ids)
        files["worst"] = write_worst_frames(run_dir, result.frames, load)
    files["report"] = write_report(run_dir)
    return files


def _percent_row(result: EvaluationResult) -> dict[str, float]:
    row = {k: float(v) * 100 for k, v in result.class_iou.items()}
    row["miou"] = float(result.miou) * 100
    return row


@dataclass
class RunReport:
    """Where a run's outputs went, for `bench run` to print."""

    run_dir: Path
    row: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    results_csv: Path | None = None
    readme: Path | None = None
    readme_changed: bool = False

    def summary(self) -> str:
        lines = [f"run folder:  {self.run_dir}"]
        lines += [f"  {kind:<14}{path.name}" for kind, path in self.files.items()]
        if self.results_csv is not None:
            lines.append(f"result row:  {self.results_csv} (and {self.results_csv.with_suffix('.md').name})")
        if self.readme is not None:
            lines.append(f"README:      {self.readme} ({'updated' if self.readme_changed else 'unchanged'})")
        return "\n".join(lines)


def report_run(
    result: EvaluationResult,
    *,
    model: str,
    dataset: str,
    dataset_kind: str,
    split: str,
    gt_root: str | os.PathLike | None = None,
    pred_dir: str | os.PathLike | None = None,
    results_csv: str | os.PathLike = RESULTS_CSV,
    runs_dir: str | os.PathLike = RUNS_DIR,
    reference: str = references.DEFAULT_REFERENCE,
    readme: str | os.PathLike | None = None,
    pred_ids: str = "label",
    run_dir: str | os.PathLike | None = None,
    when: datetime | None = None,
    worst_predictions: Mapping[str, Any] | None = None,
    **row_fields: Any,
) -> RunReport:
    """After evaluation: run folder with JSON, confusion and plots; result row; README (unless `readme=None`).

    `reference`: a table name (its first row) or a reference row id, drawn beside our row in the plots.

    `row_fields` go to `bench.report.results.row_from_result` (mode, checkpoint, preset, options, train_steps,
    predict_stats, notes, ...). Samples for the grid come from `gt_root`/`pred_dir` when both are given.
    `run_dir` (made by `new_run_dir` at `when`) is a folder the run already writes into, e.g. its predictions.
    `worst_predictions`: the worst frames' train-ID arrays held by the loop (else read from `pred_dir`), for
    the thumbnails of report.html; `results/index.html` (beside `runs_dir`) is rewritten too.
    """
    when = when or datetime.now(timezone.utc)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(model, dataset, root=runs_dir, when=when)
    row_fields.setdefault("date", when.strftime("%Y-%m-%dT%H:%M:%SZ"))  # the row and its folder agree
    row = row_from_result(
        result,
        model=model,
        dataset=dataset,
        dataset_kind=dataset_kind,
        split=split,
        run_dir=run_dir,
        **row_fields,
    )
    ref_row = references.select(reference)
    samples = pick_samples(gt_root, split, pred_dir) if gt_root is not None and pred_dir is not None else []
    files = write_run_folder(
        run_dir,
        result,
        row=row,
        reference=ref_row,
        reference_label=f"{ref_row['method']} ({ref_row['split']})",
        samples=samples,
        pred_ids=pred_ids,
    )
    files.update(
        write_html_report(run_dir, result, ref_row, gt_root, split, pred_dir, pred_ids, worst_predictions)
    )
    append_row(results_csv, row)
    if Path(run_dir).parent.resolve() == Path(runs_dir).resolve():
        from bench.report.index_page import write_index

        files["index"] = write_index(runs_dir)
    report = RunReport(run_dir=run_dir, row=row, files=files, results_csv=Path(results_csv))
    if readme is not None:
        from bench.report.readme import update_readme

        report.readme = Path(readme)
        report.readme_changed = update_readme(readme, results_csv, reference=reference)
    return report
