"""The synthetic generator writes real Cityscapes formats, deterministically, with every class present."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from bench.evaluation.reference import evaluate_img_lists
from data.cityscapes import list_samples
from data.errors import UserError
from data.labels import CLASS_NAMES, INSTANCE_CLASS_NAMES, name2label, to_train_ids
from data.synthetic import CITIES, MANIFEST, generate, main
from data.synthetic import dataset as synthetic
from data.synthetic.render import owner_map

SPLITS = ("train", "val")
IGNORED_IN_LABEL_IDS = (
    "ego vehicle",
    "rectification border",
    "out of roi",
    "static",
    "dynamic",
    "ground",
    "parking",
    "rail track",
    "guard rail",
    "bridge",
    "tunnel",
    "polegroup",
    "caravan",
    "trailer",
)
"""Void and ignored labels that each split must show in its labelIds (license plate and the groups are
checked in the polygons: license plate has id -1 and the groups rasterise to their class id)."""


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _label_id(name: str) -> int:
    """The id cityscapesScripts draws for a polygon label ("cargroup" -> car)."""
    return name2label[name if name in name2label else name.removesuffix("group")].id


def _annotation(path: Path) -> Annotation:
    ann = Annotation()
    ann.fromJsonFile(str(path))
    return ann


# ---------------------------------------------------------------- determinism and writing


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tiny_dataset, tmp_path):
    again = generate(tmp_path / "again", train=4, val=3, size=(64, 128), seed=0, workers=2)
    assert _files(again) == _files(tiny_dataset)


def test_different_seed_gives_different_frames(tiny_dataset, tmp_path):
    other = generate(tmp_path / "other", train=4, val=3, size=(64, 128), seed=1, workers=1)
    a, b = _files(tiny_dataset), _files(other)
    assert a.keys() == b.keys()
    differing = [k for k in a if k.endswith(".png") and a[k] != b[k]]
    assert len(differing) == len([k for k in a if k.endswith(".png")])


def test_regenerating_with_same_parameters_is_a_no_op(tmp_path):
    root = generate(tmp_path / "ds", train=1, val=1, size=(32, 64), workers=1)
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert generate(root, train=1, val=1, size=(32, 64), workers=1) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp


def test_regenerating_with_other_parameters_replaces_the_dataset(tmp_path):
    root = generate(tmp_path / "ds", train=2, val=1, size=(32, 64), workers=1)
    generate(root, train=1, val=1, size=(32, 64), seed=3, workers=1)
    assert len(list_samples(root, "train")) == 1
    assert json.loads((root / MANIFEST).read_text())["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left behind


def test_a_crash_leaves_no_dataset_that_looks_complete(tmp_path, monkeypatch):
    calls = []

    def fail_on_second(job):
        calls.append(job)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(job)

    real = synthetic._write_frame
    monkeypatch.setattr(synthetic, "_write_frame", fail_on_second)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "ds", train=3, val=1, size=(32, 64), workers=1)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_folder_that_is_not_a_synthetic_dataset(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        generate(tmp_path / "mine", train=1, val=1, size=(32, 64))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


# ---------------------------------------------------------------- command line


def test_cli_writes_a_dataset_and_prints_its_root(tmp_path, capsys):
    assert (
        main(
            [
                "--out",
                str(tmp_path / "ds"),
                "--train",
                "1",
                "--val",
                "1",
                "--test",
                "1",
                "--size",
                "32x64",
                "--quiet",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(tmp_path / "ds")
    assert len(list_samples(tmp_path / "ds", "test", require_images=True)) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "256x"], "HEIGHTxWIDTH"),
        (["--size", "axb"], "HEIGHTxWIDTH"),
        (["--size", "0x64"], "HEIGHTxWIDTH"),
        (["--train", "-1"], "non-negative"),
        (["--seed", "x"], "non-negative"),
    ],
)
def test_cli_rejects_malformed_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "ds"), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "16x16"], "at least"),
        (["--train", "0", "--val", "0"], "nothing to generate"),
    ],
)
def test_cli_rejects_unusable_values_with_a_clear_error(tmp_path, capsys, args, message):
    assert main(["--out", str(tmp_path / "ds"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


# ---------------------------------------------------------------- layout and file formats


def test_frames_follow_the_cityscapes_naming_and_cities(tiny_dataset):
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split, require_images=True):
            assert s.city in CITIES[split]
            assert re.fullmatch(r"\d{6}", s.seq) and re.fullmatch(r"\d{6}", s.frame)
            assert s.polygons.is_file() and s.instance_ids.is_file()


def test_files_have_the_real_cityscapes_modes_and_sizes(tiny_dataset):
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split, require_images=True):
            for path, mode in ((s.image, "RGB"), (s.label_ids, "L"), (s.instance_ids, "I;16")):
                with Image.open(path) as im:
                    assert (im.format, im.mode, im.size) == ("PNG", mode, (128, 64)), path
            doc = json.loads(s.polygons.read_text())
            assert (doc["imgHeight"], doc["imgWidth"]) == (64, 128)
            assert all(set(o) == {"label", "polygon"} for o in doc["objects"])


def test_label_ids_equal_cityscapesscripts_rasterisation_of_the_polygons(tiny_dataset):
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split):
            expected = np.array(createLabelImage(_annotation(s.polygons), "ids"))
            np.testing.assert_array_equal(_load(s.label_ids), expected)


def test_instance_ids_equal_cityscapesscripts_rasterisation_of_the_polygons(tiny_dataset):
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split):
            expected = np.array(createInstanceImage(_annotation(s.polygons), "ids"))
            np.testing.assert_array_equal(_load(s.instance_ids), expected)


def test_instance_ids_agree_with_label_ids(tiny_dataset):
    instance_label_ids = {name2label[n].id for n in (*INSTANCE_CLASS_NAMES, "caravan", "trailer")}
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split):
            inst, lab = _load(s.instance_ids).astype(np.int64), _load(s.label_ids)
            np.testing.assert_array_equal(np.where(inst >= 1000, inst // 1000, inst), lab)
            assert set(np.unique(inst[inst >= 1000] // 1000)) <= instance_label_ids


def test_rgb_is_rendered_from_the_same_polygons_as_the_labels(tiny_dataset):
    """Every pixel belongs to some polygon, and the rendering owner of a pixel has the pixel's label."""
    for s in list_samples(tiny_dataset, "val"):
        objects = json.loads(s.polygons.read_text())["objects"]
        owner = owner_map([[tuple(p) for p in o["polygon"]] for o in objects], 64, 128)
        assert (owner > 0).all()
        ids = np.array([0] + [_label_id(o["label"]) for o in objects])
        drawn = ids[owner] >= 0  # license plates are not drawn into labelIds
        np.testing.assert_array_equal(ids[owner][drawn], _load(s.label_ids)[drawn])


# ---------------------------------------------------------------- content


def test_every_split_contains_all_19_evaluated_classes(tiny_dataset):
    for split in SPLITS:
        present = set()
        for s in list_samples(tiny_dataset, split):
            present |= set(np.unique(to_train_ids(_load(s.label_ids))).tolist())
        assert present - {255} == set(range(len(CLASS_NAMES))), split


def test_every_split_contains_void_and_ignored_labels(tiny_dataset):
    for split in SPLITS:
        ids, names = set(), set()
        for s in list_samples(tiny_dataset, split):
            ids |= set(np.unique(_load(s.label_ids)).tolist())
            names |= {o["label"] for o in json.loads(s.polygons.read_text())["objects"]}
        assert {name2label[n].id for n in IGNORED_IN_LABEL_IDS} <= ids, split
        assert {"license plate", "cargroup", "persongroup"} <= names, split


def test_instance_classes_have_several_instances_some_partly_occluded(tiny_dataset):
    visible, occluded = {}, 0
    for split in SPLITS:
        for s in list_samples(tiny_dataset, split):
            inst = _load(s.instance_ids)
            for v in np.unique(inst[inst >= 1000]):
                visible[v // 1000] = visible.get(v // 1000, 0) + 1
            objects = json.loads(s.polygons.read_text())["objects"]
            owner = owner_map([[tuple(p) for p in o["polygon"]] for o in objects], 64, 128)
            for k, o in enumerate(objects):
                if o["label"] in INSTANCE_CLASS_NAMES:
                    alone = owner_map([[tuple(p) for p in o["polygon"]]], 64, 128).sum()
                    occluded += 0 < (owner == k + 1).sum() < alone
    assert visible[name2label["car"].id] >= 4 and visible[name2label["person"].id] >= 4
    assert occluded >= 5


def test_scenes_have_sky_above_and_road_below(tiny_dataset):
    for s in list_samples(tiny_dataset, "train"):
        rows = np.arange(64)[:, None] * np.ones((1, 128))
        lab = _load(s.label_ids)
        sky, road = rows[lab == name2label["sky"].id], rows[lab == name2label["road"].id]
        assert sky.mean() < road.mean()
        assert (lab[-1] == name2label["ego vehicle"].id).mean() > 0.9


def test_colour_alone_does_not_give_the_class(tiny_dataset):
    """A nearest-mean-colour classifier fitted on train gets most val pixels wrong (per-class average)."""

    def pixels(split):
        xs, ys = [], []
        for s in list_samples(tiny_dataset, split):
            train_ids = to_train_ids(_load(s.label_ids)).ravel()
            keep = train_ids < 255
            xs.append(_load(s.image).reshape(-1, 3)[keep].astype(np.float32))
            ys.append(train_ids[keep])
        return np.concatenate(xs), np.concatenate(ys)

    x, y = pixels("train")
    means = np.stack([x[y == c].mean(0) for c in range(len(CLASS_NAMES))])
    xv, yv = pixels("val")
    pred = ((xv[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    accuracy = np.mean([(pred[yv == c] == c).mean() for c in np.unique(yv)])
    assert accuracy < 0.4


def test_cityscapes_evaluation_of_ground_truth_as_prediction_is_perfect(tiny_dataset, tmp_path):
    samples = list_samples(tiny_dataset, "val")
    preds = []
    for s in samples:
        pred = tmp_path / f"{s.key}_leftImg8bit.png"
        shutil.copyfile(s.label_ids, pred)
        preds.append(str(pred))
    result = evaluate_img_lists(preds, [s.label_ids for s in samples])
    assert result["averageScoreClasses"] == pytest.approx(1.0)
    assert result["averageScoreInstClasses"] == pytest.approx(1.0)
    assert [result["classScores"][name] for name in CLASS_NAMES] == pytest.approx([1.0] * len(CLASS_NAMES))
