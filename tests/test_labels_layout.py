"""Label tables match cityscapesScripts, and layout discovery finds frames or names what is wrong."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cs_labels

from data.cityscapes import ENV_VAR, DatasetError, list_samples
from data.labels import (
    CLASS_NAMES,
    IGNORE_ID,
    LABEL_TO_TRAIN,
    NUM_CLASSES,
    SHORT_NAMES,
    TRAIN_TO_COLOR,
    TRAIN_TO_LABEL,
    to_label_ids,
    to_train_ids,
)

PER_CLASS_TABLE_COLUMNS = [
    "road",
    "swalk",
    "build.",
    "wall",
    "fence",
    "pole",
    "tlight",
    "sign",
    "veg.",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "mbike",
    "bike",
]


# ---------------------------------------------------------------- label tables


def test_label_to_train_lut_matches_cityscapesscripts_for_every_label():
    for lb in cs_labels.labels:
        if lb.id < 0:  # license plate: never a pixel value of a labelIds image
            continue
        expected = IGNORE_ID if lb.ignoreInEval or lb.trainId in (-1, 255) else lb.trainId
        assert LABEL_TO_TRAIN[lb.id] == expected, lb.name


def test_values_that_are_no_label_id_map_to_ignore():
    assert (LABEL_TO_TRAIN[34:] == IGNORE_ID).all()


def test_train_ids_round_trip_through_label_ids():
    train_ids = np.arange(NUM_CLASSES, dtype=np.uint8)
    label_ids = to_label_ids(train_ids)
    np.testing.assert_array_equal(to_train_ids(label_ids), train_ids)
    for t, lid in enumerate(label_ids):
        assert cs_labels.id2label[int(lid)].trainId == t
        assert tuple(TRAIN_TO_COLOR[t]) == cs_labels.id2label[int(lid)].color
    assert TRAIN_TO_LABEL[IGNORE_ID] == cs_labels.name2label["unlabeled"].id


def test_class_names_are_the_19_evaluated_classes_in_train_id_order():
    assert CLASS_NAMES == tuple(cs_labels.trainId2label[t].name for t in range(19))


def test_short_names_equal_the_per_class_table_columns():
    assert list(SHORT_NAMES) == PER_CLASS_TABLE_COLUMNS


# ---------------------------------------------------------------- discovery


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path):
    """A private copy of the tiny dataset that a test may damage."""
    return shutil.copytree(tiny_dataset, tmp_path / "ds")


def test_discovery_lists_every_frame_sorted_with_existing_paths(tiny_dataset):
    for split, count in (("train", 4), ("val", 3)):
        samples = list_samples(tiny_dataset, split, require_images=True)
        assert len(samples) == count
        keys = [s.key for s in samples]
        assert keys == sorted(keys) and len(set(keys)) == count
        for s in samples:
            assert s.image.is_file() and s.label_ids.is_file() and s.instance_ids.is_file()
            assert s.polygons.is_file()
            assert s.image.name == f"{s.key}_leftImg8bit.png"
            assert s.label_ids.name == f"{s.key}_gtFine_labelIds.png"


def test_discovery_rejects_a_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        list_samples(tmp_path / "nowhere", "val")


@pytest.mark.parametrize("folder", ["leftImg8bit", "gtFine"])
def test_discovery_names_a_missing_top_folder(dataset_copy, folder):
    shutil.rmtree(dataset_copy / folder)
    with pytest.raises(DatasetError, match=f"no {folder}/ folder"):
        list_samples(dataset_copy, "val")


def test_discovery_rejects_an_empty_split_and_lists_the_present_ones(tiny_dataset):
    with pytest.raises(DatasetError, match=r"split 'test' is empty.*splits present: train, val"):
        list_samples(tiny_dataset, "test")


def test_discovery_names_an_image_whose_ground_truth_is_missing(dataset_copy):
    victim = list_samples(dataset_copy, "val")[1]
    victim.label_ids.unlink()
    with pytest.raises(DatasetError, match=f"{victim.key}_leftImg8bit.png has no ground truth"):
        list_samples(dataset_copy, "val")


def test_ground_truth_without_images_is_allowed_unless_images_are_required(dataset_copy):
    victim = list_samples(dataset_copy, "val")[0]
    victim.image.unlink()
    samples = list_samples(dataset_copy, "val")
    assert len(samples) == 3 and samples[0].image is None
    with pytest.raises(DatasetError, match="have no image"):
        list_samples(dataset_copy, "val", require_images=True)


def test_discovery_falls_back_to_the_environment_variable(tiny_dataset, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tiny_dataset))
    assert [s.key for s in list_samples(None, "val")] == [s.key for s in list_samples(tiny_dataset, "val")]
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(DatasetError, match=ENV_VAR):
        list_samples(None, "val")
