"""Per-frame and per-city scores (bench/evaluation/frames.py) and the field's other measures
(bench/evaluation/measures.py): exact sums, hand-counted matrices, the mmseg/detectron2 definitions."""

from __future__ import annotations

import csv
import io
import math
import shutil

import numpy as np
import pytest

from bench.evaluation import evaluate
from bench.evaluation.frames import format_worst
from bench.evaluation.measures import CLASS_LABEL_IDS, averages, per_class
from bench.evaluation.png import read_png
from bench.evaluation.scoring import VALID_IDS
from data.labels import CLASS_NAMES, NUM_LABEL_IDS
from tests.cityscapes_files import lid, noisy_prediction, random_scene, write_gt, write_pred
from tests.shared_files import shared_file


def matrix(entries: dict[tuple[str, str], int]) -> np.ndarray:
    conf = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), dtype=np.int64)
    for (gt, pred), n in entries.items():
        conf[lid(gt), lid(pred)] += n
    return conf


def test_measures_of_a_hand_counted_matrix():
    # road: 8 GT px, 6 right, 2 called car; car: 4 GT px, 3 right, 1 called void (unlabeled);
    # sky: no GT, 1 px predicted on road... no: 1 predicted on car; 5 px of void GT predicted road: ignored
    conf = matrix(
        {
            ("road", "road"): 6,
            ("road", "car"): 2,
            ("car", "car"): 2,
            ("car", "sky"): 1,
            ("car", "unlabeled"): 1,
            ("unlabeled", "road"): 5,
        }
    )
    scores = {k: dict(zip(CLASS_NAMES, v, strict=True)) for k, v in per_class(conf).items()}
    # road: tp 6, gt 8, pred 6; car: tp 2, gt 4, pred 4; sky: tp 0, gt 0, pred 1
    assert scores["iou"]["road"] == 6 / 8 and scores["iou"]["car"] == 2 / 6 and scores["iou"]["sky"] == 0.0
    assert scores["acc"]["road"] == 6 / 8 and scores["recall"]["car"] == 2 / 4
    assert scores["precision"]["road"] == 1.0 and scores["precision"]["car"] == 2 / 4
    assert (
        scores["dice"]["road"] == 12 / 14 and scores["dice"]["car"] == 4 / 8 and scores["dice"]["sky"] == 0.0
    )
    assert scores["f1"]["road"] == pytest.approx(2 * 0.75 / 1.75) and math.isnan(scores["f1"]["sky"])
    assert math.isnan(scores["iou"]["bus"]) and math.isnan(scores["dice"]["bus"])
    avg = averages(conf)
    assert avg["aAcc"] == 8 / 12  # the void GT pixels count nowhere, the void prediction is a miss
    assert avg["mAcc"] == pytest.approx((6 / 8 + 2 / 4) / 2)
    assert avg["fwIoU"] == pytest.approx(8 / 12 * 6 / 8 + 4 / 12 * 2 / 6)  # sky has no GT: weight 0
    assert avg["mDice"] == pytest.approx((12 / 14 + 0.5 + 0.0) / 3)
    assert avg["mF1"] == pytest.approx((2 * 0.75 / 1.75 + 0.5) / 2)
    assert avg["mPrecision"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def definitions_from_pixels(gt_train: np.ndarray, pred_train: np.ndarray) -> dict[str, float]:
    """mmseg's intersect_and_union + total_area_to_metrics and detectron2's fwIoU, written from their text
    on train-ID arrays (255 ignored in GT; a void prediction is a 20th 'class' that is never right)."""
    mask = gt_train != 255
    pred, label = pred_train[mask].astype(np.int64), gt_train[mask].astype(np.int64)
    n = len(CLASS_NAMES)
    inter = np.bincount(pred[pred == label], minlength=256)[:n].astype(float)
    area_pred = np.bincount(pred, minlength=256)[:n].astype(float)
    area_label = np.bincount(label, minlength=256)[:n].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_pred + area_label - inter)
        acc = inter / area_label
        dice = 2 * inter / (area_pred + area_label)
        precision = inter / area_pred
        f1 = 2 * precision * acc / (precision + acc)
    weights = area_label / area_label.sum()
    valid = (area_label > 0) & (area_pred + area_label - inter > 0)
    return {
        "aAcc": inter.sum() / area_label.sum(),
        "mAcc": np.nanmean(acc),
        "mDice": np.nanmean(dice),
        "mF1": np.nanmean(f1),
        "mPrecision": np.nanmean(precision),
        "mRecall": np.nanmean(acc),
        "fwIoU": np.sum(iou[valid] * weights[valid]),
    }


def scenes(tmp_path, n=4, seed=3):
    rng = np.random.default_rng(seed)
    for i in range(n):
        labels, instances = random_scene(rng, n_instances=20)
        key = f"{['bochum', 'ulm'][i % 2]}_{i:06d}_000019"
        write_gt(tmp_path / "gt", key, labels, instances)
        write_pred(tmp_path / "pred", key, noisy_prediction(rng, labels, error_rate=0.2 + 0.1 * i))
    return evaluate(tmp_path / "gt", "val", tmp_path / "pred", workers=1, gt_cache=None)


def test_per_frame_matrices_sum_to_the_dataset_and_each_frame_scores_as_if_evaluated_alone(tmp_path):
    result = scenes(tmp_path)
    frames = result.frames
    assert frames is not None and len(frames) == 4
    assert np.array_equal(frames.confusion.sum(axis=0), result.confusion)
    for i, key in enumerate(frames.keys):
        alone = tmp_path / f"alone{i}"
        for kind in ("labelIds", "instanceIds"):
            src = next((tmp_path / "gt").rglob(f"{key}_gtFine_{kind}.png"))
            dst = alone / "gt" / src.relative_to(tmp_path / "gt")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
        (alone / "pred").mkdir()
        shutil.copy(tmp_path / "pred" / f"{key}_leftImg8bit.png", alone / "pred")
        single = evaluate(alone / "gt", "val", alone / "pred", workers=1, gt_cache=None)
        expected = [single.class_iou[name] for name in CLASS_NAMES]
        np.testing.assert_array_equal(frames.iou[i], np.array(expected))  # NaN where absent, same floats
        assert frames.miou[i] == single.miou
    cities = {row["city"]: row for row in frames.city_rows()}
    assert set(cities) == {"bochum", "ulm"} and cities["ulm"]["frames"] == 2
    assert sum(row["valid_pixels"] for row in cities.values()) == int(frames.valid_pixels.sum())


def test_measures_match_the_definitions_on_the_evaluated_frames(tmp_path):
    result = scenes(tmp_path, n=3, seed=5)
    gt = np.concatenate([read_png(p, "gt").ravel() for p in sorted((tmp_path / "gt").rglob("*labelIds.png"))])
    pred = np.concatenate([read_png(p, "pred").ravel() for p in sorted((tmp_path / "pred").glob("*.png"))])
    from data.labels import to_train_ids

    got = averages(result.confusion)
    want = definitions_from_pixels(to_train_ids(gt), to_train_ids(pred))
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_the_real_sample_frame_sums_and_scores_like_its_dataset(tmp_path):
    root = shared_file("fixtures/cityscapes-sample", "the project's shared fixtures (cityscapes-sample)")
    gt_file = next(root.rglob("*_gtFine_labelIds.png"))
    key = gt_file.name.replace("_gtFine_labelIds.png", "")
    labels = read_png(gt_file, "gt")
    rng = np.random.default_rng(0)
    pred = labels.copy()
    pred[rng.random(labels.shape) < 0.1] = lid("road")
    write_pred(tmp_path / "pred", key, pred)
    result = evaluate(root, "val", tmp_path / "pred", workers=1, gt_cache=None)
    frames = result.frames
    assert frames.keys == [key] and np.array_equal(frames.confusion[0], result.confusion)
    assert frames.miou[0] == result.miou  # one frame: per-frame and dataset numbers are the same
    assert frames.valid_pixels[0] == int(result.confusion[VALID_IDS].sum())
    tp = result.confusion[CLASS_LABEL_IDS, CLASS_LABEL_IDS].sum()
    assert frames.pixel_acc[0] == tp / frames.valid_pixels[0] == averages(result.confusion)["aAcc"]


def test_frames_csv_and_worst_list(tmp_path):
    frames = scenes(tmp_path).frames
    rows = list(csv.DictReader(io.StringIO(frames.csv_text())))
    assert [r["frame"] for r in rows] == frames.keys
    assert float(rows[2]["miou"]) == pytest.approx(100 * frames.miou[2], abs=1e-4)
    worst = frames.worst(2)
    assert frames.miou[worst[0]] == np.nanmin(frames.miou) and frames.miou[worst[0]] <= frames.miou[worst[1]]
    table = format_worst(frames, 2)
    assert frames.keys[worst[0]] in table.splitlines()[2] and len(table.splitlines()) == 4


def test_json_carries_measures_frames_and_cities(tmp_path):
    import json

    result = scenes(tmp_path, n=2)
    data = json.loads(result.write_json(tmp_path / "r.json").read_text())
    assert data["averageScoreClasses"] == pytest.approx(result.miou)
    assert data["measures"]["aAcc"] == pytest.approx(averages(result.confusion)["aAcc"])
    assert [f["frame"] for f in data["frames"]] == result.frames.keys
    assert {c["city"] for c in data["cities"]} == {"bochum", "ulm"}


def test_the_readme_worked_example_of_per_frame_means_against_the_dataset_miou():
    from bench.evaluation.frames import FrameScores
    from bench.evaluation.scores import InstanceTotals, _mean, class_scores

    a = matrix({("road", "road"): 1000})
    b = matrix({("road", "road"): 100, ("car", "road"): 100})
    frames = FrameScores(["aachen_000000_000019", "bochum_000000_000019"], np.stack([a, b]))
    assert list(frames.miou) == [1.0, 0.25] and frames.miou.mean() == 0.625
    dataset = _mean(class_scores(a + b, InstanceTotals())[0])
    assert dataset == pytest.approx((1100 / 1200 + 0.0) / 2)  # 45.8: pixels pooled before dividing


def test_the_streaming_evaluator_names_its_frames_and_keeps_the_worst_predictions(tmp_path):
    from bench.evaluation.streaming import StreamingEvaluator
    from data.cityscapes import list_samples
    from data.labels import to_train_ids

    dataset = scenes(tmp_path, n=4)
    samples = list_samples(tmp_path / "gt", "val")
    arrays = {s.key: to_train_ids(read_png(tmp_path / "pred" / f"{s.key}_leftImg8bit.png")) for s in samples}
    with StreamingEvaluator(workers=2, gt_cache=None, keep_worst=2) as evaluator:
        for sample in samples:
            evaluator.process(sample, arrays[sample.key])
        result = evaluator.evaluate()
        worst = evaluator.worst_predictions()
    assert result.frames.keys == [s.key for s in samples] == dataset.frames.keys
    np.testing.assert_array_equal(result.frames.confusion.sum(axis=0), result.confusion)
    want = [result.frames.keys[i] for i in result.frames.worst(2)]
    assert list(worst) == want and all(worst[k] is arrays[k] for k in want)


def _accumulated(n: int = 3):
    from bench.evaluation.accumulator import Accumulator
    from bench.evaluation.scoring import score_image
    from tests.cityscapes_files import scene

    rng = np.random.default_rng(7)
    totals = Accumulator()
    for i in range(n):
        _, labels = scene((32, 64), rng)
        totals.add(score_image(labels, np.zeros_like(labels), noisy_prediction(rng, labels)), f"a_00000{i}_0")
    return totals


def test_sums_written_and_read_back_keep_every_frames_matrix_sparsely():
    import json

    from bench.evaluation.accumulator import Accumulator

    totals = _accumulated()
    data = json.loads(json.dumps(totals.to_sums()))
    assert max(len(i) for i in data["frames"]["index"]) < NUM_LABEL_IDS * NUM_LABEL_IDS // 4  # sparse
    restored = Accumulator.from_sums(data)
    before, after = totals.result().frames, restored.result().frames
    assert after is not None and after.keys == before.keys
    assert np.array_equal(after.confusion, before.confusion)
    assert after.csv_text() == before.csv_text()
    del data["frames"]  # a unit file of an older version: totals only, no per-frame scores
    assert Accumulator.from_sums(data).frames() is None


def test_per_frame_matrices_that_do_not_add_up_are_refused():
    from bench.evaluation.accumulator import Accumulator

    data = _accumulated().to_sums()
    data["frames"]["count"][0][0] += 1
    with pytest.raises(ValueError, match="do not add up"):
        Accumulator.from_sums(data)
    data["frames"]["keys"].pop()
    with pytest.raises(ValueError, match="frames' matrices for 3 images"):
        Accumulator.from_sums(data)
