"""Boundary IoU: the one-pass band equals literal per-class erosion, the counts equal a brute-force
implementation of the definition, a hand-made map gives the answer worked out by hand, and the sink and
`bench evaluate --boundary` agree with the maths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.evaluation import evaluate
from bench.evaluation.boundary import (
    BoundaryResult,
    band_mask,
    band_width,
    boundary_counts,
    empty_counts,
)
from bench.evaluation.sinks import BoundarySink, read_gt_train_ids
from data.cityscapes import list_samples
from data.errors import UserError
from data.labels import CLASS_NAMES, IGNORE_ID, NUM_CLASSES
from tests.cityscapes_files import noisy_prediction, random_scene, write_gt, write_pred


def erode(mask: np.ndarray, d: int) -> np.ndarray:
    """The definition: a 3x3 erosion repeated d times, zero padding (outside the image is background)."""
    out = mask.copy()
    h, w = mask.shape
    for _ in range(d):
        padded = np.pad(out, 1, constant_values=False)
        step = np.ones_like(out)
        for dy in range(3):
            for dx in range(3):
                step &= padded[dy : dy + h, dx : dx + w]
        out = step
    return out


def brute_force_counts(gt: np.ndarray, pred: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: erode the GT and predicted masks literally, intersect and unite the bands off void GT."""
    valid = gt != IGNORE_ID
    inter, union = np.zeros(NUM_CLASSES, np.int64), np.zeros(NUM_CLASSES, np.int64)
    for c in range(NUM_CLASSES):
        g, p = gt == c, pred == c
        band_g = g & ~erode(g, d) & valid
        band_p = p & ~erode(p, d) & valid
        inter[c] = np.count_nonzero(band_g & band_p)
        union[c] = np.count_nonzero(band_g | band_p)
    return inter, union


def blocky(rng: np.random.Generator, shape: tuple[int, int], classes: int, cell: int) -> np.ndarray:
    """A label map of random cells (piecewise constant, like segmentation maps)."""
    h, w = shape
    cells = rng.integers(0, classes, (h // cell + 1, w // cell + 1))
    return np.repeat(np.repeat(cells, cell, 0), cell, 1)[:h, :w].astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("d", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(17, 31), (24, 9), (1, 12), (13, 13), (6, 40)])
def test_one_band_pass_equals_eroding_every_class(seed, d, shape):
    rng = np.random.default_rng(seed)
    labels = blocky(rng, shape, 4, int(rng.integers(1, 6)))
    expected = np.zeros(shape, bool)
    for c in np.unique(labels):
        mask = labels == c
        expected |= mask & ~erode(mask, d)
    np.testing.assert_array_equal(band_mask(labels, d), expected)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(29, 45), (40, 23), (3, 50)])
def test_counts_equal_the_brute_force_definition_with_void(seed, shape):
    rng = np.random.default_rng(100 + seed)
    gt = blocky(rng, shape, 6, int(rng.integers(2, 7)))
    gt[blocky(rng, shape, 4, 5) == 0] = IGNORE_ID  # void regions
    pred = blocky(rng, shape, 6, int(rng.integers(2, 7)))
    pred[rng.random(shape) < 0.05] = 18  # salt: thin structures make bands of their own
    pred[0, 0] = 255  # a value that is no class
    for ratio in (0.02, 0.05, 0.1):
        d = band_width(shape, ratio)
        counts = boundary_counts(gt, pred, ratio=ratio)
        inter, union = brute_force_counts(gt, pred, d)
        np.testing.assert_array_equal(counts.intersection, inter)
        np.testing.assert_array_equal(counts.union, union)


def test_a_hand_made_map_gives_the_counts_worked_out_by_hand():
    # 10 x 20 image, d = round(0.1 x hypot(10, 20)) = round(2.236) = 2: a 5x5 erosion, so a mask's interior
    # is what lies 2 or more pixels inside it and inside the image. GT: road in columns 0..9, car in
    # 10..19. Prediction: car from column 8.
    gt = np.zeros((10, 20), np.uint8)
    gt[:, 10:] = 13
    pred = np.zeros((10, 20), np.uint8)
    pred[:, 8:] = 13
    assert band_width(gt.shape, 0.1) == 2
    counts = boundary_counts(gt, pred, ratio=0.1)
    # road, GT: 100 pixels, interior rows 2..7 x columns 2..7 (36): band 64.
    # road, predicted (columns 0..7): 80 pixels, interior rows 2..7 x columns 2..5 (24): band 56.
    # both: columns 0, 1 (20) and rows 0, 1, 8, 9 of columns 2..7 (24): 44; union 64 + 56 - 44 = 76.
    # car, GT: 100 pixels, interior rows 2..7 x columns 12..17 (36): band 64.
    # car, predicted (columns 8..19): 120 pixels, interior rows 2..7 x columns 10..17 (48): band 72.
    # both: columns 18, 19 (20) and rows 0, 1, 8, 9 of columns 10..17 (32): 52; union 64 + 72 - 52 = 84.
    road, car = CLASS_NAMES.index("road"), CLASS_NAMES.index("car")
    assert counts.intersection[road] == 44 and counts.union[road] == 64 + 56 - 44
    assert counts.intersection[car] == 52 and counts.union[car] == 64 + 72 - 52
    others = [c for c in range(NUM_CLASSES) if c not in (road, car)]
    assert not counts.intersection[others].any() and not counts.union[others].any()
    result = BoundaryResult(counts, 0.1)
    assert result.class_iou["road"] == 44 / 76 and result.class_iou["car"] == 52 / 84
    assert math.isnan(result.class_iou["sky"])
    assert result.miou == (44 / 76 + 52 / 84) / 2


def test_void_ground_truth_counts_in_neither_band():
    gt = np.full((12, 12), IGNORE_ID, np.uint8)
    pred = np.zeros((12, 12), np.uint8)  # road everywhere, all of it over void
    counts = boundary_counts(gt, pred, ratio=0.1)
    assert not counts.union.any()
    assert math.isnan(BoundaryResult(counts).miou)


def test_perfect_prediction_scores_one_and_counts_add_over_frames():
    rng = np.random.default_rng(3)
    maps = [blocky(rng, (30, 50), 5, 4) for _ in range(3)]
    total = empty_counts()
    for m in maps:
        counts = boundary_counts(m, m)
        np.testing.assert_array_equal(counts.intersection, counts.union)
        total += counts
    result = BoundaryResult(total)
    assert result.miou == 1.0
    assert total.union.sum() == sum(boundary_counts(m, m).union.sum() for m in maps)


def test_bad_ratio_and_mismatched_shapes_are_user_errors():
    with pytest.raises(UserError, match="above 0 and at most 0.5"):
        band_width((10, 10), 0.0)
    with pytest.raises(UserError, match="size"):
        boundary_counts(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(UserError, match="above 0 and at most 0.5"):
        BoundarySink(ratio=-1)


@pytest.fixture()
def scenes(tmp_path):
    rng = np.random.default_rng(11)
    predictions = {}
    for i in range(3):
        key = f"lindau_000000_{i:06d}"
        labels, instances = random_scene(rng)
        write_gt(tmp_path, key, labels, instances)
        predictions[key] = noisy_prediction(rng, labels)
        write_pred(tmp_path / "pred", key, predictions[key])
    return tmp_path, predictions


def test_sink_and_bench_evaluate_boundary_equal_the_brute_force_sums(scenes, tmp_path):
    root, predictions = scenes
    from data.labels import to_train_ids

    samples = list_samples(root, "val")
    inter, union = np.zeros(NUM_CLASSES, np.int64), np.zeros(NUM_CLASSES, np.int64)
    with BoundarySink(max_pending=1) as sink:
        for sample in samples:
            gt = read_gt_train_ids(sample)
            pred = to_train_ids(predictions[sample.key])
            i, u = brute_force_counts(gt, pred, band_width(gt.shape))
            inter, union = inter + i, union + u
            sink.process(sample, pred, None)
        streamed = sink.evaluate()
    np.testing.assert_array_equal(streamed.counts.intersection, inter)
    np.testing.assert_array_equal(streamed.counts.union, union)
    assert streamed.n_images == len(samples)
    from_files = evaluate(root, "val", root / "pred", workers=1, boundary_ratio=0.005)
    assert repr(from_files.boundary.class_iou) == repr(streamed.class_iou)
    plain = evaluate(root, "val", root / "pred", workers=1)
    assert plain.boundary is None and repr(plain.to_cityscapes_dict()) == repr(
        from_files.to_cityscapes_dict()
    )


def test_bench_evaluate_boundary_cli_prints_and_writes_the_section(scenes, tmp_path, capsys):
    from bench.cli import main

    root, predictions = scenes
    out = tmp_path / "scores.json"
    assert (
        main(["evaluate", "--gt", str(root), "--pred", str(root / "pred"), "--boundary", "--json", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "boundary IoU (d = 0.005 x diagonal)" in printed
    data = json.loads(out.read_text())
    expected = evaluate(root, "val", root / "pred", workers=1, boundary_ratio=0.005).boundary
    assert data["boundaryIoU"]["averageScoreClasses"] == expected.miou
    assert data["boundaryIoU"]["union"] == expected.counts.union.tolist()
    with pytest.raises(SystemExit) as refused:  # the option's range, checked by argparse
        main(["evaluate", "--gt", str(root), "--pred", str(root / "pred"), "--boundary-ratio", "0"])
    assert refused.value.code == 2
    assert "above 0 and at most 0.5" in capsys.readouterr().err


def test_train_id_prediction_files_score_the_same_boundaries(scenes, tmp_path):
    root, predictions = scenes
    from data.labels import to_train_ids

    for key, pred in predictions.items():
        write_pred(tmp_path / "train_pred", key, to_train_ids(pred))
    as_label = evaluate(root, "val", root / "pred", workers=1, boundary_ratio=0.01).boundary
    as_train = evaluate(
        root, "val", tmp_path / "train_pred", pred_ids="train", workers=1, boundary_ratio=0.01
    )
    np.testing.assert_array_equal(as_train.boundary.counts.union, as_label.counts.union)
    np.testing.assert_array_equal(as_train.boundary.counts.intersection, as_label.counts.intersection)


def test_counts_of_two_halves_add_up_to_the_counts_of_the_whole():
    rng = np.random.default_rng(5)
    pairs = [(blocky(rng, (30, 44), 6, 3), blocky(rng, (30, 44), 6, 4)) for _ in range(4)]
    whole, first, second = empty_counts(), empty_counts(), empty_counts()
    for i, (gt, pred) in enumerate(pairs):
        counts = boundary_counts(gt, pred, ratio=0.05)
        whole += counts
        if i < 2:
            first += counts
        else:
            second += counts
    merged = first + second
    np.testing.assert_array_equal(merged.intersection, whole.intersection)
    np.testing.assert_array_equal(merged.union, whole.union)
    assert repr(BoundaryResult(merged).class_iou) == repr(BoundaryResult(whole).class_iou)
