"""Calibration: the streaming sums equal a float64 brute force over every valid pixel, the totals of two
halves add up to the totals of the whole exactly, the temperature is the grid's exact NLL minimiser with a
bound that holds, a given temperature is scored exactly, and arg-max-only frames make it unavailable."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from bench.evaluation.calibration import GRID, CalibrationTotals, frame_sums
from bench.evaluation.calibration_fit import fit
from bench.evaluation.sinks import CalibrationSink
from data.cityscapes import list_samples
from data.errors import UserError
from data.labels import IGNORE_ID, NUM_CLASSES, to_label_ids
from tests.cityscapes_files import write_gt

SLOTS = 16  # 15 bins and the slot of confidence 1.0


def scene_logits(rng: np.random.Generator, shape=(23, 41), scale: float = 3.0, void: float = 0.1):
    """(logits, gt, pred): GT drawn from softmax(z) with z well spread, the model's logits `scale` x z
    (over-confident for scale > 1), some void GT."""
    z = rng.normal(0, 1.5, (*shape, NUM_CLASSES))
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    cumulative = p.cumsum(-1)
    gt = (rng.random(shape)[..., None] > cumulative).sum(-1).clip(0, NUM_CLASSES - 1).astype(np.uint8)
    gt[rng.random(shape) < void] = IGNORE_ID
    logits = (scale * z).astype(np.float32)
    return logits, gt, logits.argmax(-1).astype(np.uint8)


def reference(logits, gt, pred, beta: float = 1.0) -> dict[str, object]:
    """Float64 definitions over every valid pixel, nothing shared with the code under test."""
    valid = gt != IGNORE_ID
    z = logits[valid].astype(np.float64) * beta
    g, p = gt[valid].astype(np.intp), pred[valid].astype(np.intp)
    z -= z.max(1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(1, keepdims=True)
    rows = np.arange(len(g))
    confidence, correct = prob[rows, p], p == g
    # slot 15: a confidence that is 1.0 in float32 (within float32's rounding of 1)
    slot = np.where(confidence.astype(np.float32) == 1, 15, np.floor(confidence * 15)).astype(int)
    inner = confidence[confidence.astype(np.float32) < 1] * 15  # distance to the edges 1/15 .. 14/15
    boundary_distance = np.abs(inner - np.clip(np.round(inner), 1, 14)).min() if len(inner) else 1.0
    if np.any((1 - confidence > 1e-10) & (1 - confidence < 1e-6)):  # float32 may round these to 1.0 or not
        boundary_distance = 0.0
    count = np.bincount(slot, minlength=SLOTS)
    hits = np.bincount(slot[correct], minlength=SLOTS)
    conf = np.bincount(slot, weights=confidence, minlength=SLOTS)
    onehot = np.eye(NUM_CLASSES)[g]
    return {
        "pixels": len(g),
        "nll": -np.log(prob[rows, g]).sum(),
        "brier": ((prob - onehot) ** 2).sum(),
        "count": count,
        "correct": hits,
        "confidence": conf,
        "ece": np.abs(hits - conf).sum() / len(g),
        "distance": boundary_distance,
    }


def test_frame_sums_equal_the_float64_definitions_at_every_grid_temperature():
    logits, gt, pred = scene_logits(np.random.default_rng(0), scale=1.5)
    sums = frame_sums(logits, gt, pred, block=97)  # blocks cut rows: the sums must not notice
    ref = reference(logits, gt, pred)
    assert ref["distance"] > 1e-5  # no confidence near a bin edge: float32 and float64 bin alike
    assert sums.pixels == ref["pixels"] == np.count_nonzero(gt != IGNORE_ID)
    np.testing.assert_array_equal(sums.count, ref["count"])
    np.testing.assert_array_equal(sums.correct, ref["correct"])
    # float32 softmax against float64: relative 1e-6 is float32's own rounding, summed over pixels
    np.testing.assert_allclose(sums.confidence, ref["confidence"], rtol=1e-6)
    assert sums.nll == pytest.approx(ref["nll"], rel=1e-6)
    assert sums.brier == pytest.approx(ref["brier"], rel=1e-6)
    for j, beta in enumerate(GRID):
        at = reference(logits, gt, pred, float(beta))
        assert at["distance"] > 1e-5
        assert sums.t_nll[j] == pytest.approx(at["nll"], rel=1e-6)
        np.testing.assert_array_equal(sums.t_count[j], at["count"])
        np.testing.assert_array_equal(sums.t_correct[j], at["correct"])


def test_a_confidence_of_one_has_its_own_bin_and_all_void_frames_add_nothing():
    logits = np.zeros((2, 3, NUM_CLASSES), np.float32)
    logits[..., 4] = 200.0  # softmax 1.0 exactly in float32
    gt = np.full((2, 3), 4, np.uint8)
    gt[0, 0] = 5
    sums = frame_sums(logits, gt, np.full((2, 3), 4, np.uint8), betas=())
    assert sums.count.tolist() == [0] * 15 + [6] and sums.correct.tolist() == [0] * 15 + [5]
    void = frame_sums(logits, np.full((2, 3), IGNORE_ID, np.uint8), np.zeros((2, 3), np.uint8))
    assert void.pixels == 0 and not void.count.any() and not void.t_count.any()


def test_totals_of_two_halves_add_up_to_the_totals_of_the_whole_exactly():
    rng = np.random.default_rng(1)
    frames = [scene_logits(rng, scale=s) for s in (1.0, 2.0, 3.0, 0.5)]
    whole, first, second = CalibrationTotals(GRID), CalibrationTotals(GRID), CalibrationTotals(GRID)
    for i, frame in enumerate(frames):
        sums = frame_sums(*frame)
        whole.add(sums)
        (first if i < 2 else second).add(sums)
    assert first + second == whole
    assert second + first == whole
    assert first != whole
    assert fit(first + second) == fit(whole)
    reversed_order = CalibrationTotals(GRID)
    for frame in reversed(frames):
        reversed_order.add(frame_sums(*frame))
    assert reversed_order == whole  # exact rationals: the order of frames cannot change a digit


def test_the_fitted_temperature_is_the_exact_grid_minimiser_and_its_bound_holds():
    rng = np.random.default_rng(2)
    frames = [scene_logits(rng, shape=(31, 37), scale=1.3) for _ in range(3)]  # T* near 1.3
    totals = CalibrationTotals(GRID)
    for frame in frames:
        totals.add(frame_sums(*frame))
    result = fit(totals)
    logits = np.concatenate([f[0] for f in frames])
    gt, pred = np.concatenate([f[1] for f in frames]), np.concatenate([f[2] for f in frames])
    n = np.count_nonzero(gt != IGNORE_ID)

    def nll(beta):
        return reference(logits, gt, pred, beta)["nll"] / n

    on_grid = [nll(float(b)) for b in GRID]
    j = int(np.argmin(on_grid))
    assert result.temperature == 1 / float(GRID[j]) and result.temperature_source == "fit"
    assert result.nll_t == pytest.approx(on_grid[j], rel=1e-6)
    assert result.ece_t == pytest.approx(reference(logits, gt, pred, float(GRID[j]))["ece"], rel=1e-5)
    assert result.nll == pytest.approx(nll(1.0), rel=1e-6)
    # the continuous minimum (dense search of the float64 NLL) lies within the certified bound
    betas = np.linspace(float(GRID[j - 1]), float(GRID[j + 1]), 201)
    dense = [nll(b) for b in betas]
    best = min(dense)
    gap = result.details["nllGridGap"]
    assert not math.isnan(gap) and result.nll_t - gap <= best + 1e-9 <= result.nll_t + 1e-9
    low, high = result.details["temperatureBracket"]
    assert low <= 1 / betas[int(np.argmin(dense))] <= high
    assert low <= result.details["temperatureRefined"] <= high


def test_a_given_temperature_is_scored_exactly_and_named_given():
    rng = np.random.default_rng(3)
    logits, gt, pred = scene_logits(rng, scale=2.0)
    temperature = 1.7
    sink_totals = CalibrationTotals((Fraction(1 / temperature),))
    sink_totals.add(frame_sums(logits, gt, pred, betas=(Fraction(1 / temperature),)))
    result = fit(sink_totals, given=temperature)
    at = reference(logits, gt, pred, 1 / temperature)
    assert result.temperature == temperature and result.temperature_source == "given"
    assert result.nll_t == pytest.approx(at["nll"] / at["pixels"], rel=1e-6)
    assert result.ece_t == pytest.approx(at["ece"], rel=1e-5)
    assert "grid" not in result.details


@pytest.fixture()
def frames_on_disk(tmp_path):
    """Three frames' GT files, and each frame's (train IDs, logits)."""
    rng = np.random.default_rng(4)
    arrays = {}
    for i in range(3):
        logits, gt, pred = scene_logits(rng, shape=(20, 30), scale=2.0)
        key = f"lindau_000000_{i:06d}"
        write_gt(tmp_path, key, to_label_ids(gt))  # 255 -> 0 (unlabeled): void again when read back
        arrays[key] = (gt, pred, logits)
    return tmp_path, arrays


def test_the_sink_equals_the_frame_sums_and_writes_columns(frames_on_disk):
    root, arrays = frames_on_disk
    samples = list_samples(root, "val")
    expected = CalibrationTotals(GRID)
    with CalibrationSink(max_pending=1) as sink:
        for sample in samples:
            gt, pred, logits = arrays[sample.key]
            expected.add(frame_sums(logits, gt, pred))
            sink.process(sample, pred, logits)
        result = sink.evaluate()
        assert sink.totals == expected
        sink.reset()
        assert sink.evaluate().available is False  # nothing processed since the reset
    assert result.available and result.n_images == 3
    columns = result.columns()
    assert set(columns) == {
        "ece",
        "mce",
        "nll",
        "brier",
        "temperature",
        "temperature_source",
        "ece_t",
        "nll_t",
    }
    assert columns["ece"] == result.ece * 100 and columns["temperature_source"] == "fit"


def test_frames_without_logits_make_calibration_unavailable(frames_on_disk):
    root, arrays = frames_on_disk
    with CalibrationSink() as sink:
        for sample in list_samples(root, "val"):
            gt, pred, logits = arrays[sample.key]
            sink.process(sample, pred, None)
        result = sink.evaluate()
    assert result.available is False and result.columns() == {}
    assert result.to_dict()["available"] is False


def test_bad_inputs_are_user_errors(frames_on_disk):
    root, arrays = frames_on_disk
    with pytest.raises(UserError, match="from 0.01 to 100"):
        CalibrationSink(temperature=0.0)
    logits = np.zeros((4, 5, 7), np.float32)
    with pytest.raises(UserError, match="19 logits"):
        frame_sums(logits, np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8))
    sample = list_samples(root, "val")[0]
    with CalibrationSink() as sink:
        sink.process(sample, np.zeros((3, 3), np.uint8), np.zeros((3, 3, NUM_CLASSES), np.float32))
        with pytest.raises(UserError, match="full resolution"):
            sink.evaluate()


def test_a_temperature_fitted_on_one_split_applies_exactly_to_another(frames_on_disk):
    root, arrays = frames_on_disk
    samples = list_samples(root, "val")
    fit_on, score_on = samples[:2], samples[2:]  # two "splits"
    with CalibrationSink() as fitting:
        for sample in fit_on:
            gt, pred, logits = arrays[sample.key]
            fitting.process(sample, pred, logits)
        fitted = fitting.evaluate()
    with CalibrationSink(temperature=fitted.temperature) as applying:
        for sample in score_on:
            gt, pred, logits = arrays[sample.key]
            applying.process(sample, pred, logits)
        applied = applying.evaluate()
    gt, pred, logits = arrays[score_on[0].key]
    at = reference(logits, gt, pred, 1 / fitted.temperature)
    assert applied.temperature == fitted.temperature and applied.temperature_source == "given"
    assert applied.nll_t == pytest.approx(at["nll"] / at["pixels"], rel=1e-6)
    assert applied.ece_t == pytest.approx(at["ece"], rel=1e-5)


def test_quality_sinks_results_ride_on_the_evaluation_result(frames_on_disk):
    from bench.evaluation.boundary import BoundaryResult
    from bench.evaluation.command import format_result
    from bench.evaluation.sinks import NO_QUALITY, QualitySettings, with_quality
    from tests.cityscapes_files import evaluation_result

    root, arrays = frames_on_disk
    sinks = QualitySettings().sinks()
    for sink in sinks:
        sink.reset()
    for sample in list_samples(root, "val"):
        gt, pred, logits = arrays[sample.key]
        for sink in sinks:
            sink.process(sample, pred, logits)
    results = [sink.evaluate() for sink in sinks]
    for sink in sinks:
        sink.close()
    result = with_quality(evaluation_result(0), results)
    assert isinstance(result.boundary, BoundaryResult) and result.calibration is results[1]
    text = format_result(result)
    assert "boundary IoU" in text and f"ECE {100 * results[1].ece:.2f}%" in text
    assert "fitted on this split: optimistic" in text
    assert NO_QUALITY.sinks() == []


def test_quality_flags_pick_the_sinks():
    import argparse

    from bench.evaluation.sinks import NO_QUALITY, BoundarySink, add_quality_arguments, quality_settings

    parser = argparse.ArgumentParser()
    add_quality_arguments(parser)
    default = quality_settings(parser.parse_args([])).sinks()
    assert [type(s) for s in default] == [BoundarySink, CalibrationSink]
    assert default[0].ratio == 0.005 and default[1].temperature is None
    given = quality_settings(parser.parse_args(["--temperature", "1.5", "--boundary-ratio", "0.01"])).sinks()
    assert given[0].ratio == 0.01 and given[1].temperature == 1.5
    assert quality_settings(parser.parse_args(["--no-boundary", "--no-calibration"])) == NO_QUALITY
    with pytest.raises(SystemExit):  # refused by the option's range, before any work
        parser.parse_args(["--temperature", "-1"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--boundary-ratio", "0"])
    for sink in default + given:
        sink.close()


def test_without_a_grid_the_scores_at_t_1_come_without_a_temperature():
    logits, gt, pred = scene_logits(np.random.default_rng(6))
    plain, full = CalibrationTotals(()), CalibrationTotals(GRID)
    plain.add(frame_sums(logits, gt, pred, betas=()))
    full.add(frame_sums(logits, gt, pred))
    alone, with_grid = fit(plain), fit(full)
    assert alone.available and math.isnan(alone.temperature) and math.isnan(alone.ece_t)
    # E = exp(d) alone, F^4 with F = exp(d / 4) beside the grid: the same to float32 rounding
    np.testing.assert_array_equal(plain.count, full.count)
    for name in ("ece", "mce", "nll", "brier"):
        assert getattr(alone, name) == pytest.approx(getattr(with_grid, name), rel=1e-6)
