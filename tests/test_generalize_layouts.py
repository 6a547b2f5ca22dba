"""The generalization datasets' layouts (data/layouts.py) and the train-ID ground-truth path
(bench/evaluation/train_ids.py): discovered as they ship, mislaid folders named, scored exactly as
cityscapesScripts scores the same labels mapped back to label IDs."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.evaluation.accumulator import Accumulator
from bench.evaluation.reference import evaluate_img_lists, score_dict
from bench.evaluation.scoring import VALID_IDS
from bench.evaluation.train_ids import pixel_accuracy, read_ground_truth, score_frame
from data.cityscapes import DatasetError
from data.labels import to_label_ids, to_train_ids
from data.layouts import detect_format, list_frames
from tests import generalize_layouts as layouts

KEY = "frankfurt_000000_000294"
FORMATS = ("cityscapes", "acdc", "darkzurich", "foggy", "bdd100k")


def scene(seed: int, shape=(64, 128)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, label IDs, instance IDs) of blocky random labels (every label ID, void ones too)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 34, size=(shape[0] // 8, shape[1] // 8)).astype(np.uint8)
    labels = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
    instances = labels.astype(np.uint16)
    car = labels == 26
    instances[car] = 26000 + (np.arange(car.sum()) // 40 % 3)
    rgb = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    return rgb, labels, instances


def noisy_prediction(labels: np.ndarray, seed: int) -> np.ndarray:
    """Train IDs: the truth with a third of the pixels changed (255 too: predicted void)."""
    rng = np.random.default_rng(seed)
    pred = to_train_ids(labels).copy()
    pred[pred == 255] = 0
    flip = rng.random(pred.shape) < 0.33
    pred[flip] = rng.choice([*range(19), 255], size=int(flip.sum()))
    return pred


def test_train_id_ground_truth_scores_as_cityscapes_scripts_scores_it_mapped_back_to_label_ids(tmp_path):
    preds, gts, ours = [], [], Accumulator()
    for i in range(3):
        _, labels, _ = scene(i)
        train = to_train_ids(labels)
        train_png = tmp_path / f"f{i}_gt_labelTrainIds.png"
        Image.fromarray(train).save(train_png)
        prediction = noisy_prediction(labels, 10 + i)
        ours.add(score_frame(read_ground_truth(train_png, "train"), prediction))
        # the yardstick's files: the train IDs mapped back to label IDs, no instances, label-ID predictions
        city = tmp_path / "cs" / "gtFine" / "val" / "x"
        city.mkdir(parents=True, exist_ok=True)
        gt = city / f"x_{i:06d}_000019_gtFine_labelIds.png"
        Image.fromarray(to_label_ids(train)).save(gt)
        Image.fromarray(np.zeros(train.shape, np.uint16)).save(str(gt).replace("labelIds", "instanceIds"))
        pred = tmp_path / "pred" / f"x_{i:06d}_000019_leftImg8bit.png"
        pred.parent.mkdir(exist_ok=True)
        Image.fromarray(to_label_ids(prediction)).save(pred)
        preds.append(pred)
        gts.append(gt)
    expected = score_dict(evaluate_img_lists(preds, gts))
    got = ours.result().to_cityscapes_dict()
    for key, value in expected.items():
        if isinstance(value, dict):
            for name, score in value.items():
                assert _same(got[key][name], score), (key, name)
        else:
            assert _same(got[key], value), key
    # without instance IDs cityscapesScripts' iIoU is 0 or NaN from false positives alone: equal here,
    # and the generalization table reports it absent for these datasets (test_generalize.py)
    assert not any(v > 0 for v in expected["classInstScores"].values() if not math.isnan(v))
    assert 0 < pixel_accuracy(ours.confusion) < 1


def _same(a, b) -> bool:
    a = float("nan") if a is None else a
    b = float("nan") if b is None else b
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


def test_values_that_are_no_train_id_are_named(tmp_path):
    bad = tmp_path / "bad_gt_labelTrainIds.png"
    Image.fromarray(np.full((4, 4), 26, np.uint8)).save(bad)
    with pytest.raises(Exception, match="value 26, which is no train ID"):
        read_ground_truth(bad, "train")


def test_the_invalid_mask_leaves_the_standard_score_alone_and_gives_the_valid_only_score(tmp_path):
    rgb, labels, instances = scene(3)
    invalid = np.zeros(labels.shape, bool)
    invalid[:, :64] = True
    root = layouts.write("acdc", tmp_path / "acdc", KEY, rgb, labels, instances, invalid=invalid)
    (frame,) = list_frames(root)
    assert frame.invalid is not None and frame.encoding == "train" and frame.condition == "fog"
    gt = read_ground_truth(frame.labels, frame.encoding, invalid=frame.invalid)
    prediction = noisy_prediction(labels, 4)
    full = score_frame(gt, prediction).confusion
    valid = score_frame(gt, prediction, valid_only=True).confusion
    plain = score_frame(read_ground_truth(frame.labels, "train"), prediction).confusion
    assert np.array_equal(full, plain)  # the standard score counts invalid pixels too
    # the valid-only score is the standard one of the right half alone
    half = tmp_path / "half.png"
    Image.fromarray(to_train_ids(labels)[:, 64:]).save(half)
    expected = score_frame(read_ground_truth(half, "train"), prediction[:, 64:]).confusion
    assert np.array_equal(valid[VALID_IDS], expected[VALID_IDS])  # rows of the evaluated labels
    assert valid[VALID_IDS].sum() < full[VALID_IDS].sum()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_layout_is_found_as_it_ships(fmt, tmp_path):
    rgb, labels, instances = scene(5)
    root = layouts.write(fmt, tmp_path / fmt, KEY, rgb, labels, instances)
    assert detect_format(root) == fmt
    frames = list_frames(root)
    expect = {"foggy": ["beta_0.005", "beta_0.01", "beta_0.02"], "acdc": ["fog"], "darkzurich": ["night"]}
    assert [f.condition for f in frames] == expect.get(fmt, ["all"])
    assert all(f.encoding == ("label" if fmt in ("cityscapes", "foggy") else "train") for f in frames)
    assert all((f.instances is not None) == (fmt in ("cityscapes", "foggy")) for f in frames)
    # every layout gives the same labels
    for frame in frames:
        gt = read_ground_truth(frame.labels, frame.encoding)
        assert np.array_equal(to_train_ids(gt.labels), to_train_ids(labels))


MISLAID = {
    # (what to move, where to; the path the error must name)
    "cityscapes": ("leftImg8bit", "images", "leftImg8bit"),
    "acdc": ("gt", "gt_trainval/gt", "gt/fog/val"),
    "darkzurich": ("rgb_anon/val/night", "rgb_anon/night", "rgb_anon/val/night"),
    "foggy": ("leftImg8bit_foggy/val", "leftImg8bit_foggy/trainval", "leftImg8bit_foggy/val"),
    "bdd100k": ("labels/sem_seg/masks/val", "labels/sem_seg/val", "labels/sem_seg/masks/val"),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_mislaid_folder_is_an_error_naming_the_expected_path(fmt, tmp_path):
    rgb, labels, instances = scene(6)
    root = layouts.write(fmt, tmp_path / fmt, KEY, rgb, labels, instances)
    source, target, expected = MISLAID[fmt]
    (root / target).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(root / source, root / target)
    with pytest.raises(DatasetError) as error:
        list_frames(root, fmt)
    assert str(root / expected) in str(error.value)


def test_an_ambiguous_root_needs_dataset_format(tmp_path):
    rgb, labels, instances = scene(7)
    root = layouts.write("cityscapes", tmp_path / "both", KEY, rgb, labels, instances)
    layouts.write("foggy", root, KEY, rgb, labels, instances)
    with pytest.raises(DatasetError, match="--dataset-format"):
        detect_format(root)
    assert {f.condition for f in list_frames(root, "foggy")} == {"beta_0.005", "beta_0.01", "beta_0.02"}
    assert [f.condition for f in list_frames(root, "cityscapes")] == ["all"]


def test_an_image_without_labels_names_the_label_file_expected(tmp_path):
    rgb, labels, instances = scene(8)
    root = layouts.write("bdd100k", tmp_path / "bdd", KEY, rgb, labels, instances)
    mask = root / "labels/sem_seg/masks/val" / f"{layouts.BDD_NAME}.png"
    mask.unlink()
    with pytest.raises(DatasetError, match=str(mask)):
        list_frames(root)


def test_no_layout_at_all_lists_what_is_supported(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="none of the supported layouts"):
        detect_format(tmp_path)
    assert Path(tmp_path).is_dir()
