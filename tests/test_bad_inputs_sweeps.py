"""`bench robustness` met as an unlucky user meets it: an empty list of corruptions or severities, a second
dataset of the same frame names but other pixels (its sweep must never reuse the first one's numbers), and
a sweep folder whose manifest was cut short or deleted (the advice must lead somewhere)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")
pytest.importorskip("imagecorruptions")

from bench.cli import main  # noqa: E402
from bench.robustness import plan  # noqa: E402
from data.cityscapes import list_samples  # noqa: E402

MODEL = "tests.tiny_model:tiny"
ONE_UNIT = ("--corruptions", "fog", "--severities", "1", "--limit", "1")


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


def sweep(checkpoint: Path, dataset: Path, tmp: Path, *extra: str, out: Path | None = None) -> list[str]:
    where = ["--out", str(out)] if out is not None else []
    common = ["--checkpoint", str(checkpoint), "--dataset", str(dataset), "--csv", str(tmp / "r.csv")]
    return ["robustness", *common, "--no-progress", *where, *extra]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--corruptions", "", "'' names no corruption"),
        ("--corruptions", ",", "',' names no corruption"),
        ("--corruptions", " , ", "names no corruption"),
        ("--severities", "", "is not a list of severities"),
        ("--severities", ",", "is not a list of severities"),
    ],
)
def test_an_empty_list_is_refused_not_read_as_everything(
    checkpoint, tiny_dataset, tmp_path, capsys, option, value, message
):
    with pytest.raises(SystemExit) as refused:
        main(sweep(checkpoint, tiny_dataset, tmp_path, option, value, out=tmp_path / "s"))
    assert refused.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _other_pixels(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for image in sorted((dst / "leftImg8bit").rglob("*.png")):
        pixels = np.asarray(Image.open(image))
        Image.fromarray(255 - pixels).save(image)
    return dst


def test_same_frame_names_other_pixels_get_their_own_sweep(
    checkpoint, tiny_dataset, tmp_path, capsys, monkeypatch
):
    """Dataset B used to reuse dataset A's sweep folder (same names, same size, default --out): 0 units
    computed and A's numbers reported as B's."""
    runs = tmp_path / "runs"
    monkeypatch.setattr("bench.common.paths.RUNS_DIR", runs)
    a = shutil.copytree(tiny_dataset, tmp_path / "a")
    b = _other_pixels(tiny_dataset, tmp_path / "b")
    assert [s.key for s in list_samples(a, "val")] == [s.key for s in list_samples(b, "val")]
    assert main(sweep(checkpoint, a, tmp_path, *ONE_UNIT)) == 0
    capsys.readouterr()
    assert main(sweep(checkpoint, b, tmp_path, *ONE_UNIT)) == 0
    assert "2 unit(s)" in capsys.readouterr().out  # B computed its own units
    folders = sorted(runs.glob("robustness-*"))
    assert len(folders) == 2
    digests = {json.loads((f / "manifest.json").read_text())["frames_sha256"] for f in folders}
    assert len(digests) == 2


def test_the_frames_digest_follows_the_pixels_not_the_names(tiny_dataset, tmp_path):
    a = list_samples(tiny_dataset, "val", require_images=True)
    b = list_samples(_other_pixels(tiny_dataset, tmp_path / "b"), "val", require_images=True)
    assert plan.frames_digest(a) == plan.frames_digest(list_samples(tiny_dataset, "val", require_images=True))
    assert plan.frames_digest(a) != plan.frames_digest(b)
    assert plan.frames_digest(a[:1]) != plan.frames_digest(a)


@pytest.mark.parametrize("damage", ["cut-short", "deleted"])
def test_a_damaged_manifest_gives_advice_that_works(checkpoint, tiny_dataset, tmp_path, capsys, damage):
    out = tmp_path / "s"
    args = sweep(checkpoint, tiny_dataset, tmp_path, *ONE_UNIT, out=out)
    assert main(args) == 0
    manifest = out / "manifest.json"
    if damage == "cut-short":
        manifest.write_bytes(manifest.read_bytes()[:40])
    else:
        manifest.unlink()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"delete the folder {out}" in err, err
    shutil.rmtree(out)  # what the message says
    assert main(args) == 0
