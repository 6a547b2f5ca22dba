"""Rows by name: `bench evaluate --row NAME` records an external predictions folder, `bench results` lists,
tags and removes rows; each row carries the dataset's identity (n frames, HxW, frames hash, scope)."""

from __future__ import annotations

import shutil

import pytest

from bench.cli import main
from bench.report.identity import frames_hash
from bench.report.results import read_rows
from data.cityscapes import list_samples


@pytest.fixture
def predictions(tiny_dataset, tmp_path):
    """The ground truth itself as label-ID predictions (what another tool's output folder looks like)."""
    folder = tmp_path / "mmseg-out"
    folder.mkdir()
    for sample in list_samples(tiny_dataset, "val"):
        shutil.copy(sample.label_ids, folder / f"{sample.key}.png")
    return folder


def _evaluate(tiny_dataset, predictions, results, *extra):
    argv = ["evaluate", "--gt", str(tiny_dataset), "--pred", str(predictions), "--results", str(results)]
    return main([*argv, "--no-gt-cache", *extra])


def test_evaluate_row_records_an_external_folder_with_the_datasets_identity(
    tiny_dataset, predictions, tmp_path
):
    results = tmp_path / "results.csv"
    assert _evaluate(tiny_dataset, predictions, results, "--row", "mmseg-r50", "--model", "mmseg") == 0
    (row,) = read_rows(results).to_dict("records")
    keys = [s.key for s in list_samples(tiny_dataset, "val")]
    assert row["row"] == "mmseg-r50" and row["model"] == "mmseg" and row["miou"] == pytest.approx(100.0)
    assert row["n_images"] == 3 and row["frame_size"] == "64x128" and row["frames_hash"] == frames_hash(keys)
    assert row["scope"] == "partial"  # a 3-frame generated set is no whole split of anything published
    assert row["dataset"].startswith("synthetic-v1-64x128") and row["split"] == "val"
    assert _evaluate(tiny_dataset, predictions, results, "--row", "mmseg-r50") == 2  # names are unique


def test_results_tag_untag_and_remove_rows_by_name(tiny_dataset, predictions, tmp_path, capsys):
    results = tmp_path / "results.csv"
    for name in ("a", "b"):
        assert _evaluate(tiny_dataset, predictions, results, "--row", name) == 0
    assert main(["results", "tag", "a", "baseline", "--results", str(results)]) == 0
    assert main(["results", "tag", "#1", "bad-gt", "--results", str(results)]) == 0
    assert list(read_rows(results)["tags"]) == ["baseline", "bad-gt"]
    assert main(["results", "untag", "a", "baseline", "--results", str(results)]) == 0
    assert main(["results", "remove", "b", "--results", str(results)]) == 0
    assert list(read_rows(results)["row"]) == ["a"] and list(read_rows(results)["tags"]) == [""]
    assert "b" not in results.with_suffix(".md").read_text().split("## Runs")[1].split("|")[1]
    capsys.readouterr()
    assert main(["results", "remove", "nosuch", "--results", str(results)]) == 2
    assert "no row named nosuch" in capsys.readouterr().err
    assert main(["results", "list", "--results", str(results)]) == 0
    assert capsys.readouterr().out.startswith("#0   a  a on synthetic-v1-64x128")


def test_frames_hash_depends_on_the_frames_not_their_order():
    assert frames_hash(["b", "a"]) == frames_hash(["a", "b"]) != frames_hash(["a"])
    assert len(frames_hash(["a"])) == 10
