"""Boundary IoU and calibration in the run's outputs: result JSON sections, results.csv columns (old files
keep reading), the runs table, the reliability diagram; and the evaluator's modules stay TensorFlow-free."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from bench.evaluation.boundary import BoundaryResult, boundary_counts
from bench.evaluation.calibration import GRID, CalibrationTotals, frame_sums
from bench.evaluation.calibration_fit import fit
from bench.report.results import CLASS_COLUMNS, COLUMNS, QUALITY_COLUMNS, append_row, read_rows
from bench.report.run_folder import report_run
from bench.report.tables import render_results_markdown
from tests.cityscapes_files import evaluation_result
from tests.plot_helpers import expected_size
from tests.test_calibration import scene_logits


def quality_result(seed: int = 0):
    """An evaluation result carrying a Boundary IoU and a calibration result of its own frames."""
    rng = np.random.default_rng(seed)
    logits, gt, pred = scene_logits(rng, shape=(40, 60), scale=2.0)
    totals = CalibrationTotals(GRID)
    totals.add(frame_sums(logits, gt, pred))
    boundary = BoundaryResult(boundary_counts(gt, pred, ratio=0.05), 0.05, 1)
    return dataclasses.replace(evaluation_result(seed), boundary=boundary, calibration=fit(totals))


def report(tmp_path, result):
    return report_run(
        result,
        model="pspnet",
        dataset="synthetic-v1",
        dataset_kind="synthetic",
        split="val",
        results_csv=tmp_path / "results.csv",
        runs_dir=tmp_path / "runs",
        readme=None,
        commit="abc",
        predict_stats={"images_per_s": 1.0},
    )


def test_the_run_json_row_and_runs_table_carry_boundary_and_calibration(tmp_path):
    result = quality_result()
    run = report(tmp_path, result)
    data = json.loads((run.run_dir / "result.json").read_text())
    assert data["boundaryIoU"]["averageScoreClasses"] == result.boundary.miou
    assert data["boundaryIoU"]["dilationRatio"] == 0.05
    calibration = data["calibration"]
    assert calibration["ece"] == result.calibration.ece and calibration["temperatureSource"] == "fit"
    assert len(calibration["bins"]) == 16 and len(calibration["grid"]) == len(GRID)
    (row,) = read_rows(tmp_path / "results.csv").to_dict("records")
    assert row["boundary_miou"] == float(f"{result.boundary.miou * 100:.6g}")
    assert row["ece"] == float(f"{result.calibration.ece * 100:.6g}")
    assert row["nll"] == float(f"{result.calibration.nll:.6g}") and row["temperature_source"] == "fit"
    assert row["temperature"] == result.calibration.temperature
    with Image.open(run.run_dir / "reliability.png") as im:
        assert (im.format, im.size) == ("PNG", expected_size("reliability"))
    assert run.files["reliability"] == run.run_dir / "reliability.png"
    table = render_results_markdown(read_rows(tmp_path / "results.csv"))
    header = next(line for line in table.splitlines() if line.startswith("| # | date"))
    assert "| bIoU | ECE | NLL | T |" in header
    body = table.splitlines()[table.splitlines().index(header) + 2]
    assert f"| {result.calibration.nll:.3f} |" in body and f"| {result.calibration.temperature:.2f} |" in body


def test_a_run_without_logits_or_boundary_has_empty_quality_cells_and_no_plot(tmp_path):
    plain = evaluation_result(1)
    unavailable = dataclasses.replace(
        plain, calibration=fit(CalibrationTotals(GRID))
    )  # no frames: unavailable
    run = report(tmp_path, unavailable)
    assert not (run.run_dir / "reliability.png").exists()
    data = json.loads((run.run_dir / "result.json").read_text())
    assert data["calibration"] == {"available": False, "reason": data["calibration"]["reason"]}
    assert "boundaryIoU" not in data
    with open(tmp_path / "results.csv", newline="") as f:
        (raw,) = list(csv.DictReader(f))
    assert all(raw[c] == "" for c in QUALITY_COLUMNS)
    table = render_results_markdown(read_rows(tmp_path / "results.csv"))
    assert "| - | - | - | - |" in table


def test_an_old_results_file_without_the_quality_columns_keeps_working(tmp_path):
    path = tmp_path / "results.csv"
    before = [c for c in COLUMNS if c not in QUALITY_COLUMNS]  # the schema before they existed
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=before, lineterminator="\n")
        writer.writeheader()
        writer.writerow(
            {**dict.fromkeys(before, ""), "model": "fcn", "miou": "40", **dict.fromkeys(CLASS_COLUMNS, "40")}
        )
    old_text = path.read_text().splitlines()[1]
    frame = read_rows(path)
    assert np.isnan(frame.loc[0, "ece"]) and frame.loc[0, "temperature_source"] == ""
    append_row(path, report(tmp_path / "other", quality_result(2)).row)
    with open(path, newline="") as f:
        old, new = list(csv.DictReader(f))
    assert old["model"] == "fcn" and all(old[c] == "" for c in QUALITY_COLUMNS)
    assert new["ece"] != "" and new["boundary_miou"] != ""
    assert read_rows(path).loc[0, "miou"] == 40.0 and old_text.startswith("fcn,")


def test_evaluation_and_the_quality_sinks_import_no_tensorflow():
    code = (
        "import sys\n"
        "import bench.evaluation.sinks, bench.evaluation.calibration, bench.evaluation.boundary\n"
        "import bench.evaluation.command, bench.report.run_folder\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_row_over_seeds_carries_the_mean_boundary_and_calibration():
    from bench.report import seeds
    from bench.report.results import row_from_result

    rows = [
        row_from_result(quality_result(i), model="pspnet", dataset="d", dataset_kind="synthetic", split="val")
        for i in (0, 1)
    ]
    row = seeds.aggregate(rows, (0, 1))
    for column in ("ece", "nll", "brier", "temperature", "boundary_miou"):
        assert row[column] == (rows[0][column] + rows[1][column]) / 2
    assert row["temperature_source"] == "fit"
