"""report_run: a finished evaluation becomes a run folder, a result row and a README section."""

from __future__ import annotations

import json

from PIL import Image

from bench.report import readme
from bench.report.results import read_rows
from bench.report.run_folder import new_run_dir, pick_samples, report_run
from tests.cityscapes_files import evaluation_result, tiny_cityscapes
from tests.plot_helpers import expected_size


def test_report_run_writes_folder_row_plots_and_readme(tmp_path):
    root, pred_dir = tiny_cityscapes(tmp_path / "data", n=2)
    (tmp_path / "README.md").write_text(f"# p\n\n{readme.BEGIN}\n{readme.END}\n")
    results_csv = tmp_path / "results" / "results.csv"
    result = evaluation_result(7)
    report = report_run(
        result,
        model="mypkg.models:build",
        dataset="synthetic-v1",
        dataset_kind="synthetic",
        split="val",
        gt_root=root,
        pred_dir=pred_dir,
        results_csv=results_csv,
        runs_dir=tmp_path / "results" / "runs",
        readme=tmp_path / "README.md",
        preset="tiny",
        train_steps=5,
        checkpoint="ckpt.keras",
        commit="abc",
        predict_stats={"images_per_s": 3.0, "n_images": 2},
        identity={"dataset": "synthetic-v1", "scope": "full"},  # as if a whole split: shown in the README
    )

    run_dir = report.run_dir
    assert run_dir.parent == tmp_path / "results" / "runs"
    assert run_dir.name.endswith("_mypkg.models-build_synthetic-v1")
    data = json.loads((run_dir / "result.json").read_text())
    assert data["classScores"]["road"] == result.class_iou["road"] and data["classScores"]["train"] is None
    assert data["averageScoreClasses"] == result.miou
    assert json.loads((run_dir / "row.json").read_text())["model"] == "mypkg.models:build"
    assert (run_dir / "confusion.csv").read_text().startswith("ground_truth,road,")
    for name, kind, rows in (
        ("iou_bars.png", "bars", 1),
        ("confusion.png", "confusion", 1),
        ("samples.png", "grid", 2),
    ):
        with Image.open(run_dir / name) as im:
            assert (im.format, im.size) == ("PNG", expected_size(kind, rows))

    (row,) = read_rows(results_csv).to_dict("records")
    assert row["model"] == "mypkg.models:build" and row["images_per_s"] == 3.0 and row["train_steps"] == 5
    assert row["run_dir"] == str(run_dir.resolve())  # outside the project: kept absolute
    assert row["date"].replace("-", "").replace(":", "") == run_dir.name.split("_")[0]
    assert (results_csv.parent / "results.md").is_file()
    assert report.readme_changed and "mypkg.models:build [tiny]" in (tmp_path / "README.md").read_text()
    assert "run folder:" in report.summary() and "README:" in report.summary()
    assert readme.update_readme(tmp_path / "README.md", results_csv) is False


def test_run_folders_never_collide(tmp_path):
    first = new_run_dir("pspnet", "synthetic", root=tmp_path)
    from datetime import datetime, timezone

    when = datetime.strptime(first.name.split("_")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    second = new_run_dir("pspnet", "synthetic", root=tmp_path, when=when)
    assert second != first and second.name == first.name + "-2"


def test_pick_samples_spreads_over_frames_with_predictions(tmp_path):
    root, pred_dir = tiny_cityscapes(tmp_path / "data", n=5, size=(8, 16))
    (pred_dir / "frankfurt_000000_000004_leftImg8bit.png").unlink()  # no prediction: skipped
    picked = pick_samples(root, "val", pred_dir, n=2)
    assert [p[2].name[:23] for p in picked] == ["frankfurt_000000_000000", "frankfurt_000000_000002"]
    assert all(path.is_file() for triple in picked for path in triple)
