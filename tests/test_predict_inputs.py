"""`bench predict --dataset` on any images: a Cityscapes root without gtFine/, a plain folder, one image."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.inference.inputs import frames_to_predict
from data.cityscapes import DatasetError

MODEL = "tests.tiny_model:tiny"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp("trained") / "run"
    argv = ["train", "--model", MODEL, "--dataset", str(tiny_dataset), "--steps", "1", "--batch", "1"]
    assert main([*argv, "--crop", "32x32", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def images_only(tmp_path_factory, tiny_dataset):
    """A Cityscapes root with leftImg8bit/ and no gtFine/ (what ../shared/fixtures/real-frame is)."""
    root = tmp_path_factory.mktemp("images_only")
    shutil.copytree(tiny_dataset / "leftImg8bit", root / "leftImg8bit")
    return root


def _predict(checkpoint, dataset, out, *extra):
    return main(["predict", "--checkpoint", str(checkpoint), "--dataset", str(dataset), "--out", str(out),
                 "--no-progress", *extra])  # fmt: skip


def test_a_root_without_gtfine_is_predicted(checkpoint, images_only, tmp_path):
    assert _predict(checkpoint, images_only, tmp_path / "p") == 0
    names = sorted(p.name for p in (tmp_path / "p").glob("*_leftImg8bit.png"))
    assert names == sorted(p.name for p in (images_only / "leftImg8bit" / "val").rglob("*.png"))


def test_evaluate_asks_for_the_ground_truth(checkpoint, images_only, tmp_path, capsys):
    assert _predict(checkpoint, images_only, tmp_path / "p", "--evaluate") == 2
    assert "--evaluate needs ground truth" in capsys.readouterr().err and not (tmp_path / "p").exists()


def test_a_plain_folder_of_images_is_predicted_recursively_with_any_names(checkpoint, tiny_dataset, tmp_path):
    folder = tmp_path / "holiday"
    (folder / "day 2").mkdir(parents=True)
    frames = sorted((tiny_dataset / "leftImg8bit" / "val").rglob("*.png"))
    shutil.copy(frames[0], folder / "IMG_0001.png")
    Image.open(frames[1]).convert("RGB").save(folder / "day 2" / "beach.JPG", quality=95)
    (folder / "notes.txt").write_text("not an image\n")
    assert _predict(checkpoint, folder, tmp_path / "p", "--colorize") == 0
    out = tmp_path / "p"
    assert sorted(p.name for p in out.glob("*.png")) == [
        "IMG_0001_leftImg8bit.png",
        "day 2_beach_leftImg8bit.png",
    ]
    assert sorted(p.name for p in (out / "color").iterdir()) == [
        "color_IMG_0001.png",
        "color_day 2_beach.png",
    ]
    label = np.asarray(Image.open(out / "day 2_beach_leftImg8bit.png"))
    assert label.shape == (64, 128) and label.dtype == np.uint8


def test_one_image_file_is_predicted(checkpoint, tiny_dataset, tmp_path):
    image = sorted((tiny_dataset / "leftImg8bit" / "val").rglob("*.png"))[0]
    assert _predict(checkpoint, image, tmp_path / "p") == 0
    assert [p.name for p in (tmp_path / "p").glob("*.png")] == [image.name]


def test_images_that_would_share_an_output_name_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "b.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "a_b.jpg")
    with pytest.raises(DatasetError, match="would both be predicted as a_b_leftImg8bit.png"):
        frames_to_predict(tmp_path, "val")


def test_a_folder_without_images_says_what_it_expected(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="holds no images: expected a Cityscapes root"):
        frames_to_predict(tmp_path, "val")


def test_save_logits_says_how_much_it_will_write_and_refuses_a_disk_too_small(tiny_dataset, monkeypatch):
    import collections

    from bench.inference.predict import logits_size_note

    frames = frames_to_predict(tiny_dataset, "val")
    note = logits_size_note(frames, "/tmp/logits")
    assert note.startswith("note: --save-logits writes 1 MB a frame (19 float32 logits at 64x128)")
    assert f"for {len(frames)} frames" in note
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda path: usage(10, 10, 1000))
    with pytest.raises(Exception, match=r"needs 0.0 GB .* has 0.0 GB free: use --limit"):
        logits_size_note(frames, "/tmp/logits")
