"""Plots are real PNGs of a predictable pixel size; the confusion matrix is folded to train IDs correctly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.report import plots
from data.labels import CLASS_NAMES, name2label
from tests.cityscapes_files import tiny_cityscapes, write_frame, write_pred
from tests.plot_helpers import colour_mask, expected_size, rgb

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, size):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == size
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 0  # something was drawn


def test_iou_bars_is_a_png_of_the_fixed_size(tmp_path):
    ours = {name: 10.0 + i for i, name in enumerate(CLASS_NAMES)} | {"miou": 19.0}
    ref = {name: 90.0 for name in CLASS_NAMES} | {"miou": 90.0, "train": float("nan")}
    out = plots.iou_bars(ours, tmp_path / "bars.png", reference=ref)
    _assert_png(out, expected_size("bars"))
    assert expected_size("bars") == (1200, 450)


def test_iou_bars_are_as_tall_as_the_scores(tmp_path):
    """Bar area in our colour grows with our IoUs (2x the scores, 2x the area), the reference's in grey."""
    area = {}
    for level in (40.0, 80.0):
        ours = {name: level for name in CLASS_NAMES} | {"miou": level}
        ref = {name: 100.0 - level for name in CLASS_NAMES} | {"miou": 100.0 - level}
        pixels = rgb(plots.iou_bars(ours, tmp_path / f"bars{level}.png", reference=ref))
        area[level] = (colour_mask(pixels, "#1f77b4").sum(), colour_mask(pixels, "#bbbbbb").sum())
    assert area[80.0][0] / area[40.0][0] == pytest.approx(2.0, rel=0.03)
    assert area[40.0][1] / area[80.0][1] == pytest.approx(3.0, rel=0.03)  # 60 vs 20 points of grey
    # one class changed: only our area changes, by that bar's share
    ours = {name: 40.0 for name in CLASS_NAMES} | {"road": 80.0}
    ref = {name: 60.0 for name in CLASS_NAMES}
    pixels = rgb(plots.iou_bars(ours, tmp_path / "one.png", reference=ref))
    one_bar = area[40.0][0] / len(CLASS_NAMES)
    assert colour_mask(pixels, "#1f77b4").sum() - area[40.0][0] == pytest.approx(one_bar, rel=0.05)


def test_miou_curve_is_a_png_of_the_fixed_size_with_or_without_a_target(tmp_path):
    out = plots.miou_curve([10, 20, 30], [12.5, float("nan"), 20.0], tmp_path / "curve.png", target=78.55)
    _assert_png(out, expected_size("curve"))
    _assert_png(plots.miou_curve([5], [3.0], tmp_path / "one.png"), (800, 450))


def test_miou_curve_rises_where_the_scores_rise(tmp_path):
    """On the fixed 0-100 axis of a run with a target, the curve of a rising run climbs left to right."""
    pixels = rgb(plots.miou_curve([0, 100], [30.0, 90.0], tmp_path / "up.png", target=50.0))
    rows, cols = np.nonzero(colour_mask(pixels, "#1f77b4"))
    line = rows < 0.72 * pixels.shape[0]  # above the legend (lower right), where 30..90 are drawn
    rows, cols = rows[line], cols[line]
    left, right = cols < np.median(cols), cols >= np.median(cols)
    assert rows[left].mean() > rows[right].mean() + 50  # image rows grow downwards
    # the published target is a grey line across the plot
    grey = colour_mask(pixels, "#bbbbbb")
    assert grey.sum(axis=1).max() > 0.5 * pixels.shape[1]


def test_confusion_heatmap_is_a_png_of_the_fixed_size(tmp_path):
    confusion = np.random.default_rng(0).integers(0, 100, (34, 34))
    confusion[:, name2label["truck"].id] = 0
    confusion[name2label["truck"].id] = 0  # a class absent from the ground truth: a blank row, no warning
    out = plots.confusion_heatmap(confusion, tmp_path / "confusion.png")
    _assert_png(out, expected_size("confusion"))


def test_label_id_confusion_folds_to_train_ids_with_void_predictions():
    road, car, unlabeled, sky = (name2label[n].id for n in ("road", "car", "unlabeled", "sky"))
    m = np.zeros((34, 34), np.int64)
    m[road, road] = 10
    m[road, car] = 3
    m[road, unlabeled] = 2  # predicted a void id on a valid pixel: counted in the void column
    m[unlabeled, sky] = 7  # void ground truth: not evaluated, dropped
    folded = plots.train_confusion(m)
    assert folded.shape == (19, 20)
    r, c = name2label["road"].trainId, name2label["car"].trainId
    assert folded[r, r] == 10 and folded[r, c] == 3 and folded[r, 19] == 2
    assert folded.sum() == 15


def test_train_id_confusions_are_accepted_as_they_are():
    m = np.arange(19 * 20).reshape(19, 20)
    assert np.array_equal(plots.train_confusion(m), m)
    square = np.eye(19)
    assert np.array_equal(plots.train_confusion(square)[:, :19], square)
    with pytest.raises(ValueError, match="neither train-ID"):
        plots.train_confusion(np.zeros((25, 25)))


def test_confusion_csv_has_class_rows_and_a_void_column(tmp_path):
    m = np.zeros((19, 20))
    m[0, 19] = 5
    out = plots.confusion_csv(m, tmp_path / "confusion.csv")
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[0] == "ground_truth" and lines[0].endswith(",void")
    assert lines[1].startswith("road,") and lines[1].endswith(",5")
    assert len(lines) == 20


def test_sample_grid_has_one_row_of_three_panels_per_sample(tmp_path):
    root, pred_dir = tiny_cityscapes(tmp_path / "data", n=2)
    samples = [
        (
            root / f"leftImg8bit/val/frankfurt/frankfurt_000000_{i:06d}_leftImg8bit.png",
            root / f"gtFine/val/frankfurt/frankfurt_000000_{i:06d}_gtFine_labelIds.png",
            pred_dir / f"frankfurt_000000_{i:06d}_leftImg8bit.png",
        )
        for i in range(2)
    ]
    out = plots.sample_grid(samples, tmp_path / "samples.png")
    _assert_png(out, expected_size("grid", rows=2))
    assert expected_size("grid", rows=2) == (1200, 440)
    with Image.open(out) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    road_colour = tuple(name2label["road"].color)
    assert (pixels == road_colour).all(axis=1).any()  # the palette, not raw label ids, is drawn


def test_sample_grid_draws_image_ground_truth_and_prediction_in_their_columns(tmp_path):
    """GT all road, prediction all car, image one grey: each shows in its own third, nowhere else."""
    h, w = 32, 64
    key = "frankfurt_000000_000000"
    grey = (90, 91, 92)
    image = np.broadcast_to(np.array(grey, np.uint8), (h, w, 3)).copy()
    write_frame(
        tmp_path,
        key,
        np.full((h, w), name2label["road"].id, np.uint8),
        np.zeros((h, w), np.uint16),
        image=image,
    )
    write_pred(tmp_path / "pred", key, np.full((h, w), name2label["car"].id, np.uint8))
    triple = (
        tmp_path / f"leftImg8bit/val/frankfurt/{key}_leftImg8bit.png",
        tmp_path / f"gtFine/val/frankfurt/{key}_gtFine_labelIds.png",
        tmp_path / "pred" / f"{key}_leftImg8bit.png",
    )
    pixels = rgb(plots.sample_grid([triple], tmp_path / "grid.png"))
    third = pixels.shape[1] // 3
    for colour, column in ((grey, 0), (name2label["road"].color, 1), (name2label["car"].color, 2)):
        found = (pixels == tuple(colour)).all(axis=-1)
        counts = [found[:, i * third : (i + 1) * third].sum() for i in range(3)]
        assert counts[column] > 0.5 * third * pixels.shape[0] * 0.8  # fills most of its panel
        assert sum(counts) == counts[column], (colour, counts)


def test_plots_replace_files_atomically_and_leave_no_temp_files(tmp_path):
    out = tmp_path / "bars.png"
    out.write_bytes(b"old")
    plots.iou_bars({"road": 50.0, "miou": 50.0}, out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["bars.png"]


def test_leaderboard_ranges_is_a_png_of_the_fixed_size(tmp_path):
    import pandas as pd

    board = pd.DataFrame([{n: 50.0 + i for n in CLASS_NAMES} | {"miou": 60.0 + i} for i in range(3)])
    board.loc[1, "train"] = float("nan")
    ours = {name: 40.0 for name in CLASS_NAMES} | {"miou": 40.0, "bus": float("nan")}
    out = plots.leaderboard_ranges(ours, board, tmp_path / "ranges.png", ours_label="ours")
    _assert_png(out, expected_size("ranges"))
