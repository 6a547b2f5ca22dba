"""`bench submit`: the test-server zip is written atomically and checked; `--check` names every bad file."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.submission.check import check_submission
from bench.submission.writer import entry_name
from data.cityscapes import list_images
from data.errors import UserError
from data.labels import TRAIN_TO_LABEL

H, W = 32, 64
KEYS = ("berlin_000000_000019", "berlin_000001_000019", "bonn_000000_000019")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def label_map(seed: int = 0) -> np.ndarray:
    """Label IDs of the 19 evaluated classes, as a model's predictions are."""
    rng = np.random.default_rng(seed)
    return TRAIN_TO_LABEL[rng.integers(0, 19, (H, W))].astype(np.uint8)


@pytest.fixture()
def test_split(tmp_path) -> Path:
    """A Cityscapes root whose test split has images and no ground truth at all."""
    for key in KEYS:
        city = key.split("_")[0]
        folder = tmp_path / "leftImg8bit" / "test" / city
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / f"{key}_leftImg8bit.png")
    return tmp_path


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def valid_entries() -> dict[str, bytes]:
    return {entry_name(key): png(label_map(i)) for i, key in enumerate(KEYS)}


def test_the_test_split_is_listed_from_its_images_without_ground_truth(test_split):
    frames = list_images(test_split, "test")
    assert [f.key for f in frames] == sorted(KEYS)
    assert all(f.image.is_file() and not f.label_ids.exists() for f in frames)


def test_a_valid_zip_passes_the_check(test_split, tmp_path, capsys):
    path = write_zip(tmp_path / "ok.zip", valid_entries())
    report = check_submission(path, test_split, "test")
    assert report.n_frames == len(KEYS) and report.sizes == ((H, W),)
    assert main(["submit", "--check", str(path), "--dataset", str(test_split)]) == 0
    out = capsys.readouterr().out
    assert "of split 'test'" in out and f"({H}x{W} HxW)" in out and "format valid, but not ready" in out
    assert "test split has 1525 frames" in out and "expects 1024x2048 (HxW)" in out


def test_checking_a_zip_does_not_import_tensorflow(test_split, tmp_path):
    path = write_zip(tmp_path / "ok.zip", valid_entries())
    code = (
        "import sys\nfrom bench.cli import main\n"
        f"code = main(['submit', '--check', {str(path)!r}, '--dataset', {str(test_split)!r}])\n"
        "print(code, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False"


def test_files_inside_folders_count_as_their_frame(test_split, tmp_path):
    entries = {f"results/{name}": data for name, data in valid_entries().items()}
    assert check_submission(write_zip(tmp_path / "nested.zip", entries), test_split).n_frames == len(KEYS)


def _rgb(entries):
    entries[entry_name(KEYS[0])] = png(np.stack([label_map()] * 3, axis=-1))
    return entry_name(KEYS[0]), "RGB image: write single-channel 8-bit label IDs"


def _train_ids(entries):
    rng = np.random.default_rng(1)
    entries[entry_name(KEYS[1])] = png(rng.integers(0, 19, (H, W)).astype(np.uint8))
    return entry_name(KEYS[1]), "looks like train IDs"


def _void_255(entries):
    labels = label_map()
    labels[:4] = 255
    entries[entry_name(KEYS[2])] = png(labels)
    return entry_name(KEYS[2]), "value 255, which is no label ID.*void value of train-ID"


def _value_34(entries):
    labels = label_map()
    labels[0, 0] = 34
    entries[entry_name(KEYS[0])] = png(labels)
    return entry_name(KEYS[0]), "value 34, which is no label ID"


def _half_size(entries):
    entries[entry_name(KEYS[0])] = png(label_map()[::2, ::2])
    message = rf"is {H // 2}x{W // 2} \(HxW\) but its image is {H}x{W}: predict at full resolution"
    return entry_name(KEYS[0]), message


def _sixteen_bit(entries):
    entries[entry_name(KEYS[0])] = png(label_map().astype(np.uint16))
    return entry_name(KEYS[0]), "is 16-bit: write 8-bit"


def _missing(entries):
    del entries[entry_name(KEYS[2])]
    return KEYS[2], "1 of the 3 frames of split 'test' have no prediction"


def _duplicate(entries):
    entries[f"{KEYS[1]}_copy.png"] = entries[entry_name(KEYS[1])]
    return f"{KEYS[1]}_copy.png", f"2 files match frame {KEYS[1]}: the server needs exactly one"


def _extra_png(entries):
    entries["aachen_000000_000019_leftImg8bit.png"] = png(label_map())
    return "aachen_000000_000019_leftImg8bit.png", "matches no image of split 'test'"


def _extra_file(entries):
    entries["README.txt"] = b"our submission"
    return "README.txt", "is not a PNG: the archive must hold the PNGs alone"


def _not_a_png(entries):
    entries[entry_name(KEYS[0])] = b"\x89PNG but then nothing"
    return entry_name(KEYS[0]), "is not a PNG file"


@pytest.mark.parametrize(
    "corrupt",
    [_rgb, _train_ids, _void_255, _value_34, _half_size, _sixteen_bit, _missing, _duplicate, _extra_png]
    + [_extra_file, _not_a_png],
)
def test_check_rejects_a_bad_zip_naming_the_file_and_the_fix(test_split, tmp_path, capsys, corrupt):
    entries = valid_entries()
    name, message = corrupt(entries)
    path = write_zip(tmp_path / "bad.zip", entries)
    with pytest.raises(UserError, match=message) as caught:
        check_submission(path, test_split, "test")
    assert name in str(caught.value) and "1 problem(s)" in str(caught.value)
    assert main(["submit", "--check", str(path), "--dataset", str(test_split)]) == 2
    assert name in capsys.readouterr().err


def test_every_problem_is_listed_not_just_the_first(test_split, tmp_path):
    entries = valid_entries()
    names = [corrupt(entries)[0] for corrupt in (_rgb, _train_ids, _void_255, _extra_file)]
    with pytest.raises(UserError, match="4 problem") as caught:
        check_submission(write_zip(tmp_path / "bad.zip", entries), test_split, "test")
    assert all(name in str(caught.value) for name in names)


def test_a_file_that_is_no_zip_is_named(test_split, tmp_path):
    path = tmp_path / "submission.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(UserError, match=f"{path} is not a readable zip archive"):
        check_submission(path, test_split, "test")


def test_a_split_without_images_says_which_splits_have_some(test_split):
    with pytest.raises(UserError, match="split 'val' has no images.*splits with images: test"):
        check_submission("x.zip", test_split, "val")


def test_check_and_checkpoint_are_exclusive_and_writing_needs_out(test_split, capsys):
    assert main(["submit", "--checkpoint", "c.keras", "--dataset", str(test_split)]) == 2
    assert "--checkpoint needs --out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["submit", "--checkpoint", "c.keras", "--check", "x.zip"])


# --- writing: a real (untrained) checkpoint through the prediction loop -------------------------------------
@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    pytest.importorskip("tensorflow")
    from bench.sources import keras_checkpoint as ckpt
    from models.registry import build

    model = "tests.tiny_model:tiny"
    net = build(model, aux_head=True)
    return ckpt.save(net, tmp_path / "ckpt" / "ckpt-000000.keras", {"model": model, "num_classes": 19})


@pytest.mark.slow
def test_submit_writes_a_zip_that_the_check_accepts(test_split, checkpoint, tmp_path, capsys):
    out = tmp_path / "submission.zip"
    args = ["submit", "--checkpoint", str(checkpoint), "--dataset", str(test_split), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    assert "format valid" in capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(entry_name(key) for key in KEYS)
        for name in archive.namelist():
            image = Image.open(io.BytesIO(archive.read(name)))
            assert image.mode == "L" and image.size == (W, H)
            assert set(np.unique(np.asarray(image)).tolist()) <= set(TRAIN_TO_LABEL[:19].tolist())
    assert list(tmp_path.glob(".submission.zip*")) == []  # no temporary file left
    assert main(["submit", "--check", str(out), "--dataset", str(test_split)]) == 0


@pytest.mark.slow
def test_a_crash_while_predicting_leaves_no_zip_behind(test_split, checkpoint, tmp_path, monkeypatch):
    import bench.inference.sinks as sinks

    calls = []

    def failing(array):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the split
        return png(array)

    monkeypatch.setattr(sinks, "png_bytes", failing)
    out = tmp_path / "submission.zip"
    out.write_bytes(b"the previous submission")
    with pytest.raises(KeyboardInterrupt):
        from bench.sources.opener import open_checkpoint
        from bench.submission.writer import write_submission
        from data.cityscapes import list_images

        write_submission(open_checkpoint(checkpoint), list_images(test_split, "test"), out, progress=False)
    assert out.read_bytes() == b"the previous submission"  # untouched: no half-written zip replaced it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_only_a_full_resolution_test_split_zip_is_called_ready_to_upload(tmp_path):
    from bench.submission.check import CheckReport

    ready = CheckReport(tmp_path / "s.zip", 1525, ((1024, 2048),), "test")
    assert ready.summary().endswith("(1024x2048 HxW), nothing else: ready to upload")
    val = CheckReport(tmp_path / "s.zip", 1, ((128, 256),), "val")
    assert (
        "1 frame of split 'val'" in val.summary() and "the server scores only the test split" in val.summary()
    )
