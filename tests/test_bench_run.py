"""`bench run` end to end on the tiny synthetic set: row, run folder, plots, README, checkpoint cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.common.datasets import resolve_dataset
from bench.evaluation.gt_cache import ENV_VAR as GT_CACHE_ENV
from bench.evaluation.reference import SCORE_KEYS
from bench.report import results
from bench.report.readme import update_readme
from bench.run import run_benchmark
from bench.training.recipes import Recipe
from data.errors import UserError
from models.inference_modes import InferenceSettings

TINY_RECIPE = Recipe(steps=3, batch=2, crop=(64, 64), lr=0.01, name="tiny-test")
README_TEXT = "# demo\n\n<!-- results:begin -->\nnothing yet\n<!-- results:end -->\n"


@pytest.fixture(scope="module")
def two_runs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two `bench run`s of pspnet (tiny preset) into a private results folder, README and checkpoint cache."""
    base = tmp_path_factory.mktemp("bench_run")
    readme = base / "README.md"
    readme.write_text(README_TEXT)
    kwargs = dict(
        dataset=str(tiny_dataset),
        preset="tiny",
        recipe=TINY_RECIPE,
        readme=readme,
        results_csv=base / "results" / "results.csv",
        runs_dir=base / "results" / "runs",
        checkpoint_root=base / "checkpoints",
        workers=1,
        progress=False,
    )
    first = run_benchmark("pspnet", **kwargs)
    ckpt = Path(first.row["checkpoint"])
    mtime = ckpt.stat().st_mtime_ns
    second = run_benchmark("pspnet", **kwargs)
    return base, readme, first, second, ckpt, mtime


@pytest.mark.slow
def test_run_appends_a_row_with_scores_and_provenance(two_runs):
    base, _, first, second, _, _ = two_runs
    frame = results.read_rows(base / "results" / "results.csv")
    assert len(frame) == 2
    row = frame.iloc[0]
    assert row["model"] == "pspnet" and row["preset"] == "tiny"
    assert row["dataset"] == "synthetic-v1-64x128" and row["dataset_kind"] == "synthetic"
    assert row["split"] == "val" and row["mode"] == "whole"
    assert int(row["train_steps"]) == TINY_RECIPE.steps
    assert row["recipe"] == "tiny-test"  # the checkpoint named its recipe and the row repeats it
    assert 0.0 <= float(row["miou"]) <= 100.0
    assert int(row["n_images"]) == 3
    assert float(row["images_per_s"]) > 0
    assert (base / "results" / "results.md").read_text().count("pspnet") >= 2
    # where the images/s was measured
    assert row["device"].startswith(("CPU: ", "GPU: ")) and row["precision"] == "fp32"
    assert row["batch"] == 1 and row["input_size"] == "64x128" and row["threads"] >= 1 and row["tensorflow"]
    assert (
        f"{row['threads']:.0f} threads, fp32, batch 1, 64x128"
        in (base / "results" / "results.md").read_text()
    )
    # beyond mIoU: calibration from the logits and Boundary IoU from the label maps, in every row
    assert 0 < row["ece"] <= 100 and 0 <= row["mce"] <= 100 and row["nll"] > 0 and 0 < row["brier"] <= 2
    assert row["temperature"] > 0 and row["temperature_source"] == "fit" and row["nll_t"] <= row["nll"]
    assert 0 <= row["boundary_miou"] <= 100 and row["boundary_ratio"] == 0.005


@pytest.mark.slow
def test_second_run_reuses_the_cached_checkpoint(two_runs):
    _, _, first, second, ckpt, mtime = two_runs
    assert first.row["checkpoint"] == second.row["checkpoint"]
    assert ckpt.stat().st_mtime_ns == mtime
    # same checkpoint, same frames: the same scores
    assert first.row["miou"] == second.row["miou"]


@pytest.mark.slow
def test_run_folder_holds_json_confusion_and_plots(two_runs):
    _, _, first, _, _, _ = two_runs
    run_dir = Path(first.run_dir)
    data = json.loads((run_dir / "result.json").read_text())
    assert set(SCORE_KEYS) <= set(data)
    assert abs(100 * data["averageScoreClasses"] - float(first.row["miou"])) < 1e-3
    confusion = np.loadtxt(run_dir / "confusion.csv", delimiter=",", skiprows=1, usecols=range(1, 20))
    assert confusion.sum() > 0
    sizes = {"iou_bars.png": (1200, 450), "confusion.png": (900, 800)}
    for name, size in sizes.items():
        with Image.open(run_dir / name) as img:
            assert img.format == "PNG" and img.size == size
    with Image.open(run_dir / "samples.png") as img:
        assert img.format == "PNG" and img.width == 1200
    assert data["calibration"]["available"] and data["calibration"]["pixels"] > 0
    assert abs(100 * data["calibration"]["ece"] - float(first.row["ece"])) < 1e-3
    assert abs(100 * data["boundaryIoU"]["averageScoreClasses"] - float(first.row["boundary_miou"])) < 1e-3
    with Image.open(run_dir / "reliability.png") as img:
        assert img.format == "PNG" and img.size == (600, 650)


@pytest.mark.slow
def test_readme_section_is_regenerated_and_idempotent(two_runs):
    base, readme, *_ = two_runs
    text = readme.read_text()
    assert "nothing yet" not in text and "pspnet" in text and "80.2" in text
    before = readme.read_bytes()
    assert update_readme(readme, base / "results" / "results.csv") is False
    assert readme.read_bytes() == before


@pytest.mark.slow
def test_run_scores_the_predicted_arrays_and_never_rereads_its_own_pngs(two_runs, tiny_dataset, monkeypatch):
    import bench.evaluation.evaluator as evaluator

    base, *_ = two_runs
    roles = []
    read_png = evaluator.read_png

    def spy(path, role="image"):
        roles.append(role)
        return read_png(path, role)

    def no_file_evaluation(*args, **kwargs):
        raise AssertionError("bench run evaluated prediction files")

    monkeypatch.setattr(evaluator, "read_png", spy)
    monkeypatch.setattr(evaluator, "evaluate", no_file_evaluation)
    monkeypatch.setenv(GT_CACHE_ENV, "off")  # the runs above cached the GT: count its decoding here
    report = run_benchmark(
        "pspnet",
        dataset=str(tiny_dataset),
        preset="tiny",
        recipe=TINY_RECIPE,
        readme=None,
        results_csv=base / "bf16" / "results.csv",
        runs_dir=base / "bf16" / "runs",
        checkpoint_root=base / "checkpoints",  # the cached checkpoint of the runs above
        settings=InferenceSettings(precision="bf16"),
        progress=False,
    )
    assert sorted(set(roles)) == ["ground truth", "instance ground truth"] and len(roles) == 2 * 3
    assert report.row["precision"] == "bf16" and 0 <= report.row["miou"] <= 100
    assert (Path(report.run_dir) / "samples.png").is_file()  # its PNGs came from the arrays, written once


def test_generated_dataset_is_labelled_synthetic_and_other_roots_real(tiny_dataset, tmp_path):
    assert resolve_dataset(str(tiny_dataset), progress=False).kind == "synthetic"
    plain = tmp_path / "plain"
    shutil.copytree(tiny_dataset, plain)
    (plain / "synthetic.json").unlink()
    found = resolve_dataset(str(plain), progress=False)
    assert (found.kind, found.name) == ("real", "cityscapes")


def test_cli_rejects_an_unknown_model_with_a_clear_message(capsys):
    from bench.cli import main

    assert main(["run", "--model", "no-such-model", "--no-readme"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_cli_rejects_a_missing_checkpoint_before_any_work(tmp_path, capsys):
    from bench.cli import main

    missing = tmp_path / "nope.keras"
    assert main(["run", "--model", "pspnet", "--checkpoint", str(missing), "--no-readme"]) == 2
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"model,miou\npspnet,\xff\n", "is not UTF-8 text"),
        (b"model,miou\npspnet,high\n", "column miou is 'high'"),
    ],
)
def test_run_refuses_a_broken_results_file_before_any_work(tmp_path, content, needle):
    """The row is appended at the end: a results file that cannot take it stops the run before predicting."""
    broken = tmp_path / "results.csv"
    broken.write_bytes(content)
    with pytest.raises(UserError, match=needle):
        run_benchmark(
            "pspnet", dataset=str(tmp_path / "no-dataset"), results_csv=broken, runs_dir=tmp_path / "runs"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
