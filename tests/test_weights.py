"""The published-weights table: one source per fact (PSPNet rows derived from the reference tables), every
entry checkable and linked to its published numbers, and `bench weights` listing it."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest

from bench.cli import main
from bench.common.paths import REFERENCE_DIR
from bench.report import references
from bench.sources import weights
from bench.sources.convert.published import checkpoints, sha256
from models import registry
from tests.shared_files import shared_dir


def test_every_entry_is_checkable_licensed_and_named_once():
    entries = weights.table()
    assert len({e.name for e in entries}) == len(entries)
    assert len({e.file_name for e in entries}) == len(entries)
    for entry in entries:
        assert entry.url.startswith("https://") and entry.licence and entry.input_recipe
        assert entry.digest and len(entry.digest) in (8, 64)
        assert entry.model == "litert" or entry.model in registry.available()
        if entry.model in registry.available():
            registry.check_options(entry.model, **entry.options)


def test_every_reference_id_resolves_to_its_published_number():
    rows, entries = weights.reference_rows(), weights.table()
    frame = references.load_all()
    for entry in entries:
        for row in weights.published(entry, rows):
            assert [row["miou"]] == frame.loc[frame["id"] == row["id"], "miou"].tolist()
            assert row["split"] in ("val", "test") and row["protocol"]
    numbers = {e.name: [r["miou"] for r in weights.published(e, rows)] for e in entries}
    assert numbers["espnet_p2-q8_cityscapes-1024x512"] == [60.336]
    assert numbers["espnetv2_s2.0_cityscapes-1024x512"] == [66.4, 66.2]
    assert numbers["deeplab_edgetpu-slim_cityscapes-513x513-int8"] == [70.0]
    assert numbers["pspnet_r50-d8_4xb2-80k_cityscapes-512x1024"] == [78.55, 79.79]


def test_mmseg_entries_come_from_the_reference_rows_not_a_copy(tmp_path):
    """A checkpoint row added to a reference table is a weights entry, with that row's URL and number."""
    assert [e.url for e in weights.table() if e.model == "pspnet"] == [c.url for c in checkpoints()]
    folder = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, folder)
    table = folder / "pspnet-mmseg-val.csv"
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    row = dict(rows[0])
    row.update(
        id="pspnet_r34-d8_new/ss",
        miou="70.5",
        config="configs/pspnet/pspnet_r34-d8_new.py",
        checkpoint_url="https://example.org/pspnet_r34-d8_new-0123abcd.pth",
    )
    with open(table, "a", newline="") as f:
        csv.DictWriter(f, list(rows[0])).writerow(row)
    entry = weights.get("pspnet_r34-d8_new", reference_dir=folder)
    assert (entry.url, entry.digest, dict(entry.options)) == (
        row["checkpoint_url"],
        "0123abcd",
        {"depth": 34},
    )
    assert [r["miou"] for r in weights.published(entry, weights.reference_rows(folder))] == [70.5]


def test_a_run_names_the_reference_row_of_its_split_and_protocol():
    deeplab = weights.get("deeplab_edgetpu-slim_cityscapes-513x513-int8")
    assert weights.reference_id(deeplab, "val") == "deeplab_edgetpu-slim_cityscapes/val-os32"
    assert weights.reference_id(deeplab, "test") is None  # no test number published
    assert weights.reference_id(deeplab, "val", flip=True) is None  # not the published protocol
    psp = weights.get("pspnet_r18-d8_4xb2-80k_cityscapes-512x1024")
    multiscale = dict(mode="multiscale", flip=True, scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75))
    assert (
        weights.reference_id(psp, "val", **multiscale) == "pspnet_r18-d8_4xb2-80k_cityscapes-512x1024/ms-flip"
    )


def test_a_file_is_recognised_by_its_hash():
    deeplab = weights.get("deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite")  # by file name too
    assert weights.by_sha256(deeplab.sha256) == deeplab
    psp = weights.get("pspnet_r18-d8_4xb2-80k_cityscapes-512x1024")
    assert weights.by_sha256("09ffa746" + "0" * 56) == psp
    assert weights.by_sha256("f" * 64) is None


def test_the_shared_files_have_the_published_hashes():
    folder = shared_dir() / "weights"
    present = [(folder / e.file_name, e) for e in weights.table() if (folder / e.file_name).is_file()]
    if not present:
        pytest.skip(f"no published weights in {folder}: download them from the URLs of `bench weights`")
    assert len(present) >= 4  # the ESPNet, two ESPNetv2 and the DeepLab files of ../shared/weights
    for path, entry in present:
        assert sha256(path) == entry.sha256, path


def test_bench_weights_lists_every_entry(capsys):
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    for entry in weights.table():
        assert entry.name in out and entry.url in out
    assert "66.4 val, 66.2 test" in out and "70.0 val" in out and "79.79 val multiscale+flip" in out


def test_bench_weights_markdown_and_details(capsys):
    assert main(["weights", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| name | model |") and len(lines) == 2 + len(weights.table())
    assert main(["weights", "espnetv2_s2.0_cityscapes-1024x512"]) == 0
    out = capsys.readouterr().out
    assert "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8" in out
    assert "PIL bilinear, antialiased" in out and "published 66.4 mIoU, val" in out


def test_an_unknown_name_lists_the_known_ones(capsys):
    assert main(["weights", "no-such-weights"]) == 2
    err = capsys.readouterr().err
    assert "unknown weights 'no-such-weights'" in err and "espnet_p2-q8_cityscapes-1024x512" in err


def test_listing_the_table_leaves_tensorflow_unimported():
    code = (
        "import contextlib, io, sys\nfrom bench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['weights'])\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_a_converted_file_names_its_published_weights_and_their_reference_row():
    """A `bench run` of a converted ESPNet .pth names the row it should reproduce (it named none)."""
    v2 = weights.get("espnetv2_s2.0_cityscapes-1024x512")
    converted = {"source": {"format": "espnetv2", "file": "renamed.pth", "sha256": v2.sha256}}
    assert weights.of_metadata(converted) == v2
    assert (
        weights.reference_id(weights.of_metadata(converted), "val") == "espnetv2_s2.0_cityscapes-1024x512/val"
    )
    deeplab = weights.get("deeplab_edgetpu-slim_cityscapes-513x513-int8")
    assert weights.of_metadata({"weights": deeplab.name}) == deeplab  # a LiteRT file names itself
    assert weights.of_metadata({"source": {"file": "ours.pth", "sha256": "f" * 64}}) is None
    assert weights.of_metadata({"model": "pspnet"}) is None
