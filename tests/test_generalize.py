"""`bench generalize`: the real Cityscapes sample frame written in every layout scores identically in all of
them; the table, plot and README section; resumption from the unit files; each frame decoded once."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("tensorflow")

from bench.cli import main  # noqa: E402  (after the TensorFlow check)
from bench.generalize import report, sweep  # noqa: E402
from data.labels import CLASS_NAMES  # noqa: E402
from tests import generalize_layouts as layouts  # noqa: E402
from tests.shared_files import shared_file  # noqa: E402

MODEL = "tests.tiny_model:tiny"
KEY = "frankfurt_000000_000294"
SAMPLE = f"fixtures/cityscapes-sample/leftImg8bit/val/frankfurt/{KEY}_leftImg8bit.png"
FORMATS = ("cityscapes", "acdc", "darkzurich", "foggy", "bdd100k")


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """The shared real frame in each layout; every layout holds the pixels BDD100K's JPEG decodes to."""
    image = shared_file(SAMPLE, "the cityscapes-sample fixture (README 'Real weights you can run today')")
    gt = image.parents[3] / "gtFine" / "val" / "frankfurt"
    labels = np.asarray(Image.open(gt / f"{KEY}_gtFine_labelIds.png"))
    instances = np.asarray(Image.open(gt / f"{KEY}_gtFine_instanceIds.png"))
    data = layouts.jpeg_bytes(np.asarray(Image.open(image).convert("RGB")))
    rgb = layouts.decode_jpeg(data)
    invalid = np.zeros(labels.shape, bool)
    invalid[: labels.shape[0] // 3] = True
    base = tmp_path_factory.mktemp("layouts")
    out = {}
    for fmt in FORMATS:
        mask = invalid if fmt == "acdc" else None
        out[fmt] = layouts.write(fmt, base / fmt, KEY, rgb, labels, instances, invalid=mask, jpeg=data)
    layouts.write("acdc", out["acdc"], KEY, rgb, labels, instances, condition="night", invalid=invalid)
    return out


def _spec(roots: dict[str, Path]) -> str:
    return ",".join(f"{k}={v}" for k, v in roots.items())


@pytest.fixture(scope="module")
def swept(checkpoint, roots, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    readme = out.parent / "README.md"
    readme.write_text(f"# x\n\n## Generalization\n\n{report.BEGIN}\nold\n{report.END}\n\nafter\n")
    argv = ["generalize", str(checkpoint), "--datasets", _spec(roots), "--out", str(out)]
    assert main([*argv, "--readme", str(readme), "--no-progress"]) == 0
    return out, readme, argv


def _table(out: Path) -> list[dict]:
    with open(out / "generalize.csv") as f:
        return list(csv.DictReader(f))


def test_the_real_frame_scores_identically_in_every_layout(swept):
    table = _table(swept[0])
    names = [(r["dataset"], r["condition"]) for r in table]
    assert names == [
        ("acdc", "fog"),
        ("acdc", "night"),
        ("acdc", "all"),
        ("bdd100k", "all"),
        ("cityscapes", "all"),
        ("darkzurich", "night"),
        ("foggy", "beta_0.005"),
        ("foggy", "beta_0.01"),
        ("foggy", "beta_0.02"),
    ]
    first = table[0]
    for row in table:
        for column in ("miou", "pixel_accuracy", *CLASS_NAMES):
            assert row[column] == first[column], (row["dataset"], row["condition"], column)
        assert row["drop"] == "0.0"
        assert row["frames"] == ("2" if row["condition"] == "all" and row["dataset"] == "acdc" else "1")
    # iIoU only where instance IDs exist; the valid-pixel mIoU only where invalid masks exist
    assert {r["dataset"] for r in table if r["iiou"] != report.ABSENT} == {"cityscapes", "foggy"}
    assert {r["dataset"] for r in table if r["miou_valid"]} == {"acdc"}
    assert table[0]["miou_valid"] != table[0]["miou"]


def test_the_row_is_what_bench_evaluate_scores_for_the_same_predictions(swept, checkpoint, roots, tmp_path):
    pred = tmp_path / "pred"
    assert main(["predict", "--checkpoint", str(checkpoint), "--dataset", str(roots["cityscapes"]), "--split",
                 "val", "--out", str(pred)]) == 0  # fmt: skip
    json_path = tmp_path / "scores.json"
    assert main(["evaluate", "--gt", str(roots["cityscapes"]), "--split", "val", "--pred", str(pred),
                 "--json", str(json_path)]) == 0  # fmt: skip
    import json

    expected = json.loads(json_path.read_text())
    row = next(r for r in _table(swept[0]) if r["dataset"] == "cityscapes")
    assert float(row["miou"]) == pytest.approx(100 * expected["averageScoreClasses"], abs=1e-4)
    assert float(row["iiou"]) == pytest.approx(100 * expected["averageScoreInstClasses"], abs=1e-4)


def test_the_report_the_plot_and_the_readme_section(swept):
    out, readme, _ = swept
    text = readme.read_text()
    assert "old" not in text and text.endswith("\nafter\n")
    assert "| ACDC | fog | 1 |" in text and "generalize.png" in text
    assert (out / "generalize.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "generalize.md").read_text() in text


def test_a_rerun_resumes_from_the_unit_files_and_decodes_each_frame_once(swept, monkeypatch):
    out, readme, argv = swept
    before = (out / "generalize.csv").read_text()
    (out / "units" / "foggy-beta_0.01.json").unlink()
    decoded = []
    real = sweep.decode_frame

    def counting(path):
        decoded.append(path)
        return real(path)

    monkeypatch.setattr(sweep, "decode_frame", counting)
    assert main([*argv, "--no-progress"]) == 0
    assert [p.name for p in decoded] == [f"{KEY}_leftImg8bit_foggy_beta_0.01.png"]  # only the missing unit
    assert (out / "generalize.csv").read_text() == before


def test_other_settings_or_bad_datasets_are_refused(swept, capsys):
    out, _, argv = swept
    assert main([*argv, "--limit", "1", "--mode", "slide", "--no-progress"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(["generalize", "x.keras", "--datasets", "kitti=/tmp"]) == 2
    assert "kitti" in capsys.readouterr().err
    assert main(["generalize", "x.keras", "--datasets", "acdc=/nonexistent/acdc"]) == 2
    assert "/nonexistent/acdc" in capsys.readouterr().err


def test_a_bdd100k_jpeg_is_decoded_once_per_frame(roots, checkpoint, tmp_path, monkeypatch):
    decoded = []
    real = sweep.decode_frame
    monkeypatch.setattr(sweep, "decode_frame", lambda p: decoded.append(p) or real(p))
    argv = [
        "generalize",
        str(checkpoint),
        "--datasets",
        f"bdd100k={roots['bdd100k']}",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--no-progress"]) == 0
    assert [p.suffix for p in decoded] == [".jpg"]
