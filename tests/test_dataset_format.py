"""`--dataset-format` on `bench predict`, `bench evaluate` and `bench run`: an ACDC, Dark Zurich, Foggy
Cityscapes or BDD100K root is predicted and scored with its labels in their own encoding (train IDs mapped
back to label IDs), and scores exactly as the same pixels in the Cityscapes layout do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from bench.cli import main  # noqa: E402  (after the TensorFlow check)
from tests import generalize_layouts as layouts  # noqa: E402

MODEL = "tests.tiny_model:tiny"
KEY = "frankfurt_000000_000294"
FORMATS = ("cityscapes", "acdc", "darkzurich", "foggy", "bdd100k")


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


@pytest.fixture(scope="module")
def roots(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """One synthetic 64x128 frame in every layout, the same pixels in each (BDD100K's JPEG decoded)."""
    gt = sorted((tiny_dataset / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))[0]
    stem = gt.name[: -len("_gtFine_labelIds.png")]
    image = tiny_dataset / "leftImg8bit" / "val" / gt.parent.name / f"{stem}_leftImg8bit.png"
    labels = np.asarray(Image.open(gt))
    instances = np.asarray(Image.open(gt.with_name(f"{stem}_gtFine_instanceIds.png")))
    data = layouts.jpeg_bytes(np.asarray(Image.open(image).convert("RGB")))
    rgb = layouts.decode_jpeg(data)
    base = tmp_path_factory.mktemp("layouts")
    return {f: layouts.write(f, base / f, KEY, rgb, labels, instances, jpeg=data) for f in FORMATS}


CORE = ("classScores", "classInstScores", "categoryScores", "categoryInstScores", "averageScoreClasses",
        "averageScoreInstClasses", "averageScoreCategories", "averageScoreInstCategories")  # fmt: skip


def _core(path: Path) -> dict:
    """cityscapesScripts' keys of a scores JSON (predict --evaluate adds Boundary IoU and calibration)."""
    scores = json.loads(path.read_text())
    return {key: scores[key] for key in CORE}


def _predict(checkpoint, root, out, *extra) -> dict:
    json_path = out.parent / f"{out.name}.json"
    argv = ["predict", "--checkpoint", str(checkpoint), "--dataset", str(root), "--out", str(out)]
    assert main([*argv, "--evaluate", "--json", str(json_path), "--no-progress", *extra]) == 0
    return _core(json_path)


@pytest.fixture(scope="module")
def predicted(checkpoint, roots, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    base = tmp_path_factory.mktemp("pred")
    return {f: (base / f, _predict(checkpoint, roots[f], base / f)) for f in FORMATS}


def test_predict_evaluate_scores_every_layout_as_the_cityscapes_one(predicted):
    expected = predicted["cityscapes"][1]
    assert any(v is not None and v > 0 for v in expected["classScores"].values())
    for fmt in FORMATS:
        scores = predicted[fmt][1]
        assert scores["classScores"] == expected["classScores"], fmt
        assert scores["averageScoreClasses"] == expected["averageScoreClasses"], fmt
    # iIoU only where the layout has instance IDs (Cityscapes' and Foggy's gtFine), absent elsewhere
    assert predicted["acdc"][1]["averageScoreInstClasses"] is None
    assert predicted["bdd100k"][1]["averageScoreInstClasses"] is None
    assert predicted["foggy"][1]["averageScoreInstClasses"] == expected["averageScoreInstClasses"]


@pytest.mark.parametrize("fmt", ["acdc", "darkzurich", "foggy", "bdd100k"])
def test_evaluate_scores_the_written_files_as_predict_scored_the_arrays(fmt, predicted, roots, tmp_path):
    out, scores = predicted[fmt]
    json_path = tmp_path / "scores.json"
    argv = ["evaluate", "--gt", str(roots[fmt]), "--pred", str(out), "--json", str(json_path)]
    assert main([*argv, "--dataset-format", fmt]) == 0
    assert _core(json_path) == scores
    assert main(argv) == 0  # the one layout the folder holds: detected
    assert _core(json_path) == scores


def test_a_root_that_holds_two_layouts_needs_dataset_format(predicted, roots, tmp_path, capsys):
    both = tmp_path / "both"
    shutil.copytree(roots["cityscapes"], both)
    shutil.copytree(roots["foggy"] / "leftImg8bit_foggy", both / "leftImg8bit_foggy")
    json_path = tmp_path / "scores.json"
    pred = str(predicted["cityscapes"][0])
    argv = ["evaluate", "--gt", str(both), "--pred", pred, "--json", str(json_path)]
    assert main(argv) == 2
    assert "--dataset-format" in capsys.readouterr().err
    assert main([*argv, "--dataset-format", "cityscapes"]) == 0
    assert _core(json_path) == predicted["cityscapes"][1]
    argv[4] = str(predicted["foggy"][0])
    assert main([*argv, "--dataset-format", "foggy"]) == 0
    assert _core(json_path) == predicted["foggy"][1]


def test_bench_run_on_a_layout_is_scored_as_generalize_scores_it(
    checkpoint, roots, predicted, tmp_path, monkeypatch, capsys
):
    from bench.common import paths

    monkeypatch.setattr(paths, "RUNS_DIR", tmp_path / "runs")
    assert main(["run", "--dataset", str(roots["acdc"])]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["run", "--checkpoint", str(checkpoint), "--dataset", str(roots["acdc"])]) == 0
    printed = capsys.readouterr().out
    assert "generalize" in printed
    (folder,) = (tmp_path / "runs").iterdir()
    table = (folder / "generalize.csv").read_text().splitlines()
    row = dict(zip(table[0].split(","), table[1].split(","), strict=True))
    assert float(row["miou"]) == pytest.approx(100 * predicted["acdc"][1]["averageScoreClasses"], abs=0.05)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--gt", "{acdc}", "--pred", "{pred}", "--boundary"], "--boundary"),
        (["evaluate", "--gt", "{acdc}", "--pred", "{pred}", "--row", "x"], "--row"),
        (["evaluate", "--gt", "{cityscapes}", "--pred", "{pred}", "--dataset-format", "acdc"], "rgb_anon"),
        (["run", "--checkpoint", "{ckpt}", "--dataset", "{acdc}", "--seeds", "0,1"], "--seeds"),
        (["run", "--dataset-format", "acdc"], "--dataset"),
    ],
)
def test_unsupported_combinations_are_clear_errors(argv, message, checkpoint, roots, predicted, capsys):
    names = {k: str(v) for k, v in roots.items()}
    names.update(pred=str(predicted["acdc"][0]), ckpt=str(checkpoint))
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_two_frames_of_one_key_are_refused(checkpoint, roots, tmp_path, capsys):
    root = tmp_path / "acdc"
    shutil.copytree(roots["acdc"], root)
    for part in ("rgb_anon", "gt"):
        shutil.copytree(root / part / "fog", root / part / "night")
    assert main(["predict", "--checkpoint", str(checkpoint), "--dataset", str(root), "--out",
                 str(tmp_path / "p")]) == 2  # fmt: skip
    assert "share one file" in capsys.readouterr().err
