"""The evaluator gives cityscapesScripts' numbers: each case runs cityscapesScripts on the same files."""

from __future__ import annotations

import io
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.evaluation import AVG_CLASS_SIZE, evaluate, read_png
from bench.evaluation.gt_cache import GTCache
from bench.evaluation.reference import (
    SCORE_KEYS,
    ReferenceEvaluationError,
    evaluate_img_lists,
    reference_module,
    score_dict,
)
from data.cityscapes import list_samples
from data.labels import CLASS_NAMES, to_train_ids
from tests.cityscapes_files import H, W, lid, noisy_prediction, random_scene, write_gt, write_png, write_pred
from tests.cityscapes_reference import find_predictions, ground_truth_files

KEY = "aachen_000000_000019"


def assert_same_as_cityscapesscripts(
    root: Path,
    pred_dir: Path,
    *,
    pred_ids: str = "label",
    reference_preds: Path | None = None,
    workers: int = 1,
):
    """Run both evaluators, each finding its own files; every score key equal within 1e-9, NaN in the same
    places. Ours runs three times, bit-identical: without the GT cache, with a cold one (decodes and stores
    every frame) and warm (reads every frame from its entry, rewrites none). Returns ours."""
    ours = evaluate(root, "val", pred_dir, pred_ids=pred_ids, workers=workers, gt_cache=None)
    with tempfile.TemporaryDirectory(prefix="gt-cache-") as folder:
        cache = GTCache(Path(folder))
        cold = evaluate(root, "val", pred_dir, pred_ids=pred_ids, workers=workers, gt_cache=cache)
        stored = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.entries()}
        warm = evaluate(root, "val", pred_dir, pred_ids=pred_ids, workers=workers, gt_cache=cache)
        assert len(stored) == ours.n_images
        assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in cache.entries()} == stored
    for cached in (cold, warm):
        assert repr(cached.to_cityscapes_dict()) == repr(ours.to_cityscapes_dict())
        assert np.array_equal(cached.confusion, ours.confusion) and cached.warnings == ours.warnings
    gts = ground_truth_files(root, "val")
    assert sorted(str(s.label_ids) for s in list_samples(root, "val")) == gts
    ref = score_dict(evaluate_img_lists(find_predictions(gts, reference_preds or pred_dir), gts))
    mine = ours.to_cityscapes_dict()
    assert list(mine) == list(ref)
    for key, value in ref.items():
        pairs = value.items() if isinstance(value, dict) else [(key, value)]
        got = mine[key]
        if isinstance(value, dict):
            assert list(got) == list(value), key
        for name, expected in pairs:
            actual = got[name] if isinstance(value, dict) else got
            if math.isnan(expected):
                assert math.isnan(actual), (key, name, actual)
            else:
                assert abs(actual - expected) <= 1e-9, (key, name, actual, expected)
    return ours


def single_image(tmp_path: Path, labels: np.ndarray, pred: np.ndarray, instances: np.ndarray | None = None):
    write_gt(tmp_path / "gt", KEY, labels, instances)
    write_pred(tmp_path / "pred", KEY, pred)
    return tmp_path / "gt", tmp_path / "pred"


def full(label: str) -> np.ndarray:
    return np.full((H, W), lid(label), np.uint8)


def test_random_scenes_with_many_instances_match_cityscapesscripts_in_workers_and_inline(tmp_path):
    rng = np.random.default_rng(7)
    for i in range(5):
        labels, instances = random_scene(rng, n_instances=60)
        assert len(np.unique(instances[instances > 1000])) > 30
        key = f"{['bochum', 'aachen', 'ulm'][i % 3]}_{i:06d}_000019"
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred" / "sub", key, noisy_prediction(rng, labels))
    pooled = assert_same_as_cityscapesscripts(tmp_path / "gt", tmp_path / "pred", workers=2)
    inline = evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=1)
    assert repr(pooled.to_cityscapes_dict()) == repr(inline.to_cityscapes_dict())  # bit-identical
    assert pooled.n_images == 5 and int(pooled.confusion.sum()) == 5 * H * W
    assert 0.0 < pooled.miou < 1.0 and 0.0 < pooled.iiou < 1.0


def test_hundreds_of_instances_of_one_class_accumulate_like_cityscapesscripts(tmp_path):
    rng = np.random.default_rng(11)
    for i in range(8):
        labels = np.full((H, W), lid("road"), np.uint8)
        instances = labels.astype(np.uint16)
        for k in range(90):  # small, overlapping person instances of many sizes
            y, x = rng.integers(0, H - 2), rng.integers(0, W - 2)
            hh, ww = rng.integers(1, 12), rng.integers(1, 12)
            labels[y : y + hh, x : x + ww] = lid("person")
            instances[y : y + hh, x : x + ww] = lid("person") * 1000 + k
        key = f"ulm_{i:06d}_000019"
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred", key, noisy_prediction(rng, labels, 0.4))
    result = assert_same_as_cityscapesscripts(tmp_path / "gt", tmp_path / "pred", workers=2)
    assert 0.0 < result.class_iiou["person"] < 1.0


def test_spawned_workers_give_the_same_result(tmp_path, monkeypatch):
    """Processes that run TensorFlow get spawned workers instead of forked ones."""
    from bench.evaluation import pool

    rng = np.random.default_rng(2)
    for i in range(2):
        labels, instances = random_scene(rng)
        write_gt(tmp_path / "gt", f"ulm_{i:06d}_000019", labels, instances)
        write_pred(tmp_path / "pred", f"ulm_{i:06d}_000019", noisy_prediction(rng, labels))
    forked = evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=2)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules[__name__])  # pretend TensorFlow is loaded
    assert pool._pool_context().get_start_method() == "spawn"
    spawned = evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=2)
    assert repr(spawned.to_cityscapes_dict()) == repr(forked.to_cityscapes_dict())


def test_void_prediction_on_valid_gt_counts_as_false_negative(tmp_path):
    pred = full("road")
    pred[:, : W // 2] = lid("unlabeled")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, full("road"), pred))
    assert result.class_iou["road"] == pytest.approx(0.5)
    assert result.confusion[lid("road"), lid("unlabeled")] == H * W // 2


def test_prediction_on_ignored_gt_is_not_counted(tmp_path):
    labels = full("road")
    labels[: H // 2] = lid("ego vehicle")
    pred = full("sidewalk")
    pred[H // 2 :] = lid("road")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, labels, pred))
    assert result.class_iou["road"] == 1.0
    assert math.isnan(result.class_iou["sidewalk"])  # its predictions lie only on ignored GT


def test_class_absent_from_gt_and_prediction_is_nan_and_left_out_of_mean(tmp_path):
    labels, pred = full("road"), full("road")
    labels[:, :10] = pred[:, :10] = lid("sky")
    pred[0, 20:40] = lid("sky")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, labels, pred))
    present = [result.class_iou["road"], result.class_iou["sky"]]
    assert sum(math.isnan(v) for v in result.class_iou.values()) == len(CLASS_NAMES) - 2
    assert result.miou == pytest.approx(sum(present) / 2)


def test_class_predicted_but_absent_from_gt_scores_zero(tmp_path):
    pred = full("road")
    pred[:4, :4] = lid("train")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, full("road"), pred))
    assert result.class_iou["train"] == 0.0
    assert result.class_iiou["train"] == 0.0  # false positives without any instance


def test_group_labels_count_in_iou_but_not_in_iiou(tmp_path):
    labels = full("road")
    instances = labels.astype(np.uint16)
    labels[:20, :40] = lid("car")  # a car group: label id in the instance file, no instance
    instances[:20, :40] = lid("car")
    labels[30:50, 60:100] = lid("car")
    instances[30:50, 60:100] = lid("car") * 1000
    pred = full("road")
    pred[30:50, 60:100] = lid("car")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, labels, pred, instances))
    assert result.class_iou["car"] == pytest.approx(800 / 1600)
    assert result.class_iiou["car"] == 1.0


def test_iiou_weights_small_instances_like_large_ones(tmp_path):
    labels = full("road")
    instances = labels.astype(np.uint16)
    labels[0:40, 0:100] = lid("person")  # large, fully found
    instances[0:40, 0:100] = lid("person") * 1000
    labels[50:54, 0:4] = lid("person")  # small, missed
    instances[50:54, 0:4] = lid("person") * 1000 + 1
    pred = full("road")
    pred[0:40, 0:100] = lid("person")
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, labels, pred, instances))
    assert result.class_iou["person"] == pytest.approx(4000 / 4016)
    assert result.class_iiou["person"] == pytest.approx(0.5)


def test_caravan_and_trailer_predictions_on_car_are_vehicle_hits_and_their_instances_are_skipped(tmp_path):
    labels = full("road")
    instances = labels.astype(np.uint16)
    labels[0:20, 0:40] = lid("car")
    instances[0:20, 0:40] = lid("car") * 1000
    labels[30:50, 0:40] = lid("caravan")
    instances[30:50, 0:40] = lid("caravan") * 1000
    labels[30:50, 60:100] = lid("trailer")
    instances[30:50, 60:100] = lid("trailer") * 1000
    pred = full("road")
    pred[0:20, 0:20] = lid("caravan")
    pred[0:20, 20:40] = lid("trailer")
    pred[30:50, 0:40] = lid("car")  # car predicted on caravan GT: an ignored GT class
    result = assert_same_as_cityscapesscripts(*single_image(tmp_path, labels, pred, instances))
    assert result.category_iiou["vehicle"] == 1.0  # caravan/trailer count as vehicle on the car instance
    assert result.category_iou["vehicle"] == 0.0  # but not in the category IoU
    assert result.class_iiou["car"] == 0.0


def test_train_id_predictions_with_pred_ids_train_equal_the_label_id_result(tmp_path):
    rng = np.random.default_rng(3)
    labels, instances = random_scene(rng)
    label_pred = noisy_prediction(rng, labels)
    train_pred = to_train_ids(label_pred)  # void ids become 255
    assert (train_pred == 255).any()
    write_gt(tmp_path / "gt", KEY, labels, instances)
    write_pred(tmp_path / "train", KEY, train_pred)
    write_pred(tmp_path / "label", KEY, np.where(train_pred == 255, 0, label_pred).astype(np.uint8))
    result = assert_same_as_cityscapesscripts(
        tmp_path / "gt", tmp_path / "train", pred_ids="train", reference_preds=tmp_path / "label"
    )
    assert result.warnings == []


def test_train_id_files_read_as_label_ids_give_a_warning_naming_pred_ids_train(tmp_path):
    rng = np.random.default_rng(4)
    labels, instances = random_scene(rng)
    labels[labels > 0] = lid("road")  # mostly evaluated pixels
    single_image(tmp_path, labels, to_train_ids(noisy_prediction(rng, labels, 0.05)) % 19, instances)
    result = evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=1)
    assert any("--pred-ids train" in w for w in result.warnings)
    honest = evaluate(tmp_path / "gt", "val", tmp_path / "pred", pred_ids="train", workers=1)
    assert honest.warnings == [] and honest.miou > result.miou


def test_json_has_cityscapesscripts_keys_with_null_for_nan(tmp_path):
    pred = full("road")
    pred[:, :5] = lid("car")
    gt, pred_dir = single_image(tmp_path, full("road"), pred)
    result = evaluate(gt, "val", pred_dir, workers=1)
    path = result.write_json(tmp_path / "out" / "scores.json")
    data = json.loads(path.read_text())  # strict JSON: no NaN tokens
    assert set(SCORE_KEYS) <= set(data)
    assert data["classScores"]["sky"] is None and data["classScores"]["road"] == result.class_iou["road"]
    assert data["categoryInstScores"]["human"] is None
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temp file left


def test_png_decoding_is_bit_exact_with_pillow(tmp_path):
    rng = np.random.default_rng(5)
    arrays = {
        "l8.png": rng.integers(0, 256, (H, W)).astype(np.uint8),
        "i16.png": rng.integers(0, 65536, (H, W)).astype(np.uint16),
    }
    for name, array in arrays.items():
        write_png(tmp_path / name, array)
    palette = Image.fromarray(arrays["l8.png"] % 34).convert("P")
    palette.save(tmp_path / "p.png")
    for name in ("l8.png", "i16.png", "p.png"):
        expected = np.array(Image.open(tmp_path / name))
        got = read_png(tmp_path / name)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), name


def test_prediction_pngs_we_write_are_unfiltered_and_read_back_exactly_by_pillow_and_us():
    import struct
    import zlib

    from bench.evaluation.png import encode_png

    rng = np.random.default_rng(6)
    labels, _ = random_scene(rng)
    for array in (labels, rng.integers(0, 256, (H, W, 3)).astype(np.uint8)):
        data = encode_png(array)
        assert np.array_equal(np.array(Image.open(io.BytesIO(data))), array)
        assert np.array_equal(decode_png_bytes(data), array)
        chunks, pos = [], 8
        while pos < len(data):
            (length,) = struct.unpack_from(">I", data, pos)
            chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
            pos += 12 + length
        raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
        row = array.shape[1] * (array.shape[2] if array.ndim == 3 else 1) + 1
        assert set(raw[::row]) == {0}  # filter type None on every row: nothing to undo when decoding


def decode_png_bytes(data: bytes) -> np.ndarray:
    from bench.evaluation.png import decode_png

    return decode_png(data, "in memory")


def test_average_class_sizes_are_cityscapesscripts_table():
    assert AVG_CLASS_SIZE == reference_module().args.avgClassSize


def test_reference_wrapper_turns_cityscapesscripts_exit_into_an_exception(tmp_path):
    gt, pred = single_image(tmp_path, full("road"), full("road"))
    with pytest.raises(ReferenceEvaluationError, match="not of equal size"):
        evaluate_img_lists([], list(gt.rglob("*_labelIds.png")))


def test_ground_truth_only_root_with_any_city_names_scores_as_cityscapesscripts(tmp_path, capsys):
    """No leftImg8bit/, city names that are not [a-z_]+: every frame is scored, as cityscapesScripts does."""
    rng = np.random.default_rng(11)
    keys = [
        "lindau2_000000_000019",
        "Köln_000001_000019",
        "frankfurt_000000_000019",
        "new-york_000002_000003",
    ]
    for key in keys:
        labels, instances = random_scene(rng, n_instances=20)
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred" / key[:3], key, noisy_prediction(rng, labels))
    (tmp_path / "gt" / "leftImg8bit" / "val").rmdir()
    (tmp_path / "gt" / "leftImg8bit").rmdir()
    result = assert_same_as_cityscapesscripts(tmp_path / "gt", tmp_path / "pred", workers=2)
    assert result.n_images == 4
    from bench.cli import main

    assert main(["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]) == 0
    assert "4 images" in capsys.readouterr().out


def test_reference_wrapper_leaves_numpy_and_global_args_untouched(tmp_path):
    module = reference_module()
    before = dict(vars(module.args))
    assert_same_as_cityscapesscripts(*single_image(tmp_path, full("road"), full("road")))
    assert not hasattr(np, "in1d") or np.__version__ < "2.4"
    assert vars(module.args).keys() == before.keys()
    assert module.args.quiet == before["quiet"] and module.args.JSONOutput == before["JSONOutput"]


def test_synthetic_dataset_with_model_like_predictions_matches_cityscapesscripts(tiny_dataset, tmp_path):
    rng = np.random.default_rng(9)
    for sample in list_samples(tiny_dataset, "val"):
        labels = read_png(sample.label_ids)
        write_pred(tmp_path / "pred", sample.key, noisy_prediction(rng, labels, 0.2))
    result = assert_same_as_cityscapesscripts(tiny_dataset, tmp_path / "pred", workers=2)
    assert result.n_images == 3 and not math.isnan(result.iiou)


def test_accumulator_fed_from_arrays_equals_the_file_evaluator_and_resets(tmp_path):
    """Scoring arrays in memory (validation during training, predict --evaluate) gives `bench evaluate`'s
    numbers bit for bit; result() can be read mid-way and reset() starts over."""
    from bench.evaluation import Accumulator, score_image

    rng = np.random.default_rng(5)
    scenes = []
    for i in range(4):
        labels, instances = random_scene(rng, n_instances=40)
        pred = noisy_prediction(rng, labels)
        key = f"ulm_{i:06d}_000019"
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred", key, pred)
        scenes.append((key, labels, instances, pred))
    from_files = evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=1)

    totals = Accumulator()
    first = None
    for _key, labels, instances, pred in sorted(scenes, key=lambda s: s[0]):  # sample order of the split
        totals.add(score_image(labels, instances, pred))
        first = first or totals.result()
    assert first.n_images == 1 and first.miou != from_files.miou
    assert repr(totals.result().to_cityscapes_dict()) == repr(from_files.to_cityscapes_dict())
    assert totals.result().n_images == 4 and np.array_equal(totals.result().confusion, from_files.confusion)
    totals.reset()
    assert totals.result().n_images == 0 and int(totals.result().confusion.sum()) == 0
