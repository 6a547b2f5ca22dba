"""Scoring inside the prediction loop: arrays handed to the streaming evaluator score exactly as the same
predictions written to PNG files and read back by `bench evaluate` (which equals cityscapesScripts)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluation import evaluate
from bench.evaluation.accumulator import Accumulator
from bench.evaluation.gt_cache import GTCache
from bench.evaluation.streaming import StreamingEvaluator
from data.cityscapes import list_samples
from data.errors import UserError
from data.labels import TRAIN_TO_LABEL
from tests.cityscapes_files import noisy_prediction, random_scene, write_gt, write_pred


@pytest.fixture()
def scenes(tmp_path):
    """Six frames of random scenes with many instances, their noisy predictions as arrays and as PNGs."""
    rng = np.random.default_rng(7)
    predictions = {}
    for i in range(6):
        key = f"lindau_000000_{i:06d}"
        labels, instances = random_scene(rng)
        write_gt(tmp_path, key, labels, instances)
        predictions[key] = noisy_prediction(rng, labels)
        write_pred(tmp_path / "pred", key, predictions[key])
    return tmp_path, predictions


def assert_same_result(a, b) -> None:
    np.testing.assert_array_equal(a.confusion, b.confusion)
    assert a.n_images == b.n_images
    # identical floats, NaN where NaN: the same sums in the same order
    assert a.to_cityscapes_dict().keys() == b.to_cityscapes_dict().keys()
    for key, value in a.to_cityscapes_dict().items():
        other = b.to_cityscapes_dict()[key]
        if isinstance(value, dict):
            np.testing.assert_array_equal(np.array(list(value.values())), np.array(list(other.values())))
        else:
            np.testing.assert_array_equal(value, other)


@pytest.mark.parametrize("workers", [1, 3])
def test_arrays_scored_in_the_loop_equal_bench_evaluate_on_the_written_files(scenes, workers, tmp_path):
    """Without the GT cache, with a cold one and with it warm (the second pass reads every frame's GT from
    the entries the first one wrote)."""
    root, predictions = scenes
    from_files = evaluate(root, "val", root / "pred", workers=1, gt_cache=None)
    cache = GTCache(tmp_path / "gt-cache")
    for gt_cache in (None, cache, cache):
        with StreamingEvaluator(ids="label", workers=workers, max_pending=2, gt_cache=gt_cache) as evaluator:
            for sample in list_samples(root, "val"):
                evaluator.process(sample, predictions[sample.key])
            streamed = evaluator.evaluate()
        assert_same_result(streamed, from_files)
        assert streamed.warnings == from_files.warnings
    assert len(cache.entries()) == len(predictions)


def test_reset_forgets_the_frames_processed_before(scenes):
    root, predictions = scenes
    samples = list_samples(root, "val")
    with StreamingEvaluator(ids="label") as evaluator:
        evaluator.process(samples[0], predictions[samples[0].key])
        evaluator.reset()
        for sample in samples:
            evaluator.process(sample, predictions[sample.key])
        assert evaluator.evaluate().n_images == len(samples)


@pytest.mark.parametrize("cached", [False, True])
def test_train_id_arrays_as_the_loop_passes_them_equal_their_label_id_twins(scenes, cached, tmp_path):
    """With the GT cache the train IDs are mapped run by run, not pixel by pixel: the same sums."""
    root, predictions = scenes
    cache = GTCache(tmp_path / "gt-cache") if cached else None
    to_train = np.full(256, 255, np.uint8)  # label id -> train id, 255 for every id that is no train class
    to_train[TRAIN_TO_LABEL[:19]] = np.arange(19, dtype=np.uint8)
    to_label = np.zeros(
        256, np.uint8
    )  # and back; void (255) becomes "unlabeled" (0), as the evaluator reads it
    to_label[:19] = TRAIN_TO_LABEL[:19]
    samples = list_samples(root, "val")
    results = {}
    for mode in ("label", "train", "train"):  # with a cache: cold, then warm
        with StreamingEvaluator(ids=mode, gt_cache=cache) as evaluator:
            for sample in samples:
                train_ids = to_train[predictions[sample.key]]
                prediction = train_ids if mode == "train" else to_label[train_ids]
                evaluator.process(sample, prediction, None)  # the sink contract: logits may be None
            results[mode] = evaluator.evaluate()
    assert_same_result(results["train"], results["label"])


def test_a_wrong_size_prediction_is_named_with_its_frame(scenes):
    root, predictions = scenes
    sample = list_samples(root, "val")[0]
    with (
        StreamingEvaluator(ids="label") as evaluator,
        pytest.raises(UserError, match=f"prediction of {sample.key}.*full res"),
    ):
        evaluator.process(sample, predictions[sample.key][:, :-8])
        evaluator.evaluate()


def test_accumulator_result_is_available_at_any_point_and_counts_images(scenes):
    root, predictions = scenes
    from bench.evaluation.evaluator import score_prediction

    totals = Accumulator()
    assert totals.result().n_images == 0 and np.isnan(totals.result().miou)
    for sample in list_samples(root, "val")[:2]:
        totals.add(score_prediction(sample.label_ids, sample.instance_ids, predictions[sample.key], "p"))
    assert totals.result().n_images == 2 and totals.result().confusion.sum() > 0
