"""Label tables match cityscapesScripts, and layout discovery finds frames or names what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers import labels as cs_labels

from bench.evaluation.reference import ReferenceEvaluationError
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
from tests.cityscapes_reference import file_key, ground_truth_files

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
        list_samples(dataset_copy, "val", require_images=True)


def test_ground_truth_alone_is_enough_without_images(dataset_copy):
    """Users who downloaded only gtFine evaluate with it; training and prediction still need leftImg8bit."""
    shutil.rmtree(dataset_copy / "leftImg8bit")
    samples = list_samples(dataset_copy, "val")
    assert len(samples) == 3 and all(s.image is None and s.label_ids.is_file() for s in samples)
    with pytest.raises(DatasetError, match="no leftImg8bit/ folder"):
        list_samples(dataset_copy, "val", require_images=True)


def add_frame(root: Path, folder: str, key: str, split: str = "val") -> Path:
    """A copy of the first val frame's GT (and image) under another city folder and name."""
    first = list_samples(root, split)[0]
    gt = root / "gtFine" / split / folder
    gt.mkdir(parents=True, exist_ok=True)
    for kind in ("labelIds.png", "instanceIds.png", "polygons.json"):
        shutil.copy(first.label_ids.with_name(f"{first.key}_gtFine_{kind}"), gt / f"{key}_gtFine_{kind}")
    if first.image is not None:
        (root / "leftImg8bit" / split / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(first.image, root / "leftImg8bit" / split / folder / f"{key}_leftImg8bit.png")
    return gt / f"{key}_gtFine_labelIds.png"


def test_discovery_finds_exactly_the_files_cityscapesscripts_finds(dataset_copy):
    """Any city folder and city name (digits, capitals, umlauts, dots, dashes), as cityscapesScripts' glob;
    hidden copies (`._x`, what macOS leaves) are skipped by both."""
    for folder, key in [
        ("lindau2", "lindau2_000000_000019"),
        ("Köln", "Köln_000001_000019"),
        ("new-york", "new-york_000000_000123"),
        ("a.b", "a.b_1_2"),
        ("ZURICH", "ZURICH_000000_000019"),
        ("lindau", "frankfurt_000009_000019"),  # a name whose city is not its folder's
    ]:
        add_frame(dataset_copy, folder, key)
    hidden = add_frame(dataset_copy, "lindau2", "lindau2_000000_000020")
    hidden.rename(hidden.with_name("._" + hidden.name))
    (dataset_copy / "leftImg8bit/val/lindau2/lindau2_000000_000020_leftImg8bit.png").unlink()
    theirs = ground_truth_files(dataset_copy, "val")
    ours = list_samples(dataset_copy, "val", require_images=True)
    assert len(theirs) == 3 + 6
    assert sorted(str(s.label_ids) for s in ours) == theirs
    assert {s.key: str(s.label_ids) for s in ours} == {file_key(f): f for f in theirs}
    for s in ours:
        assert (
            s.image
            == dataset_copy / "leftImg8bit" / "val" / s.label_ids.parent.name / f"{s.key}_leftImg8bit.png"
        )


@pytest.mark.parametrize(
    "name, theirs",
    [
        ("my_city_000000_000019", None),  # cityscapesScripts stops on it: "Found 7 part(s)"
        ("frankfurt_000000_000019_x", None),
        ("frankfurt_000000", "frankfurt_000000_gtFine"),  # it reads the frame as "gtFine": nonsense
        ("frankfurt__000019", "frankfurt__000019"),  # an empty sequence number
    ],
)
def test_a_name_discovery_cannot_parse_is_an_error_naming_the_file(dataset_copy, name, theirs):
    bad = add_frame(dataset_copy, "frankfurt", name)
    with pytest.raises(DatasetError, match=f"cannot parse the file name {bad}"):
        list_samples(dataset_copy, "val")
    assert str(bad) in ground_truth_files(dataset_copy, "val")  # found, so never skipped
    if theirs is None:
        with pytest.raises(ReferenceEvaluationError, match="part"):
            file_key(bad)
    else:
        assert file_key(bad) == theirs


def test_two_ground_truth_files_with_one_name_are_an_error(dataset_copy):
    first = list_samples(dataset_copy, "val")[0]
    copy = add_frame(dataset_copy, "elsewhere", first.key)
    with pytest.raises(DatasetError, match=f"two ground-truth files are named .*{copy}"):
        list_samples(dataset_copy, "val")


@pytest.mark.parametrize("split", ["", "..", "val/frankfurt", "../gtFine/val"])
def test_a_split_that_is_not_a_folder_name_is_refused(tiny_dataset, split):
    with pytest.raises(DatasetError, match="not a folder name"):
        list_samples(tiny_dataset, split)


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
