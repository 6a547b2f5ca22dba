"""compare: per-class deltas against reference tables, inputs (CSV, run folder, JSON), clear errors."""

from __future__ import annotations

import csv
import json
import math

import pytest

from bench.cli import main
from bench.report import references
from bench.report.compare import compare_rows, load_ours
from bench.report.results import CLASS_COLUMNS, append_row, row_from_result
from data.errors import UserError
from tests.cityscapes_files import evaluation_result

SEED_ROW = [
    98.6,
    86.6,
    93.2,
    58.1,
    63.0,
    64.5,
    75.2,
    79.2,
    93.4,
    72.1,
    95.1,
    86.3,
    71.4,
    96.0,
    73.5,
    90.4,
    80.3,
    69.9,
    76.9,
]
"""The seed document's PSPNet row (Cityscapes test), road ... bike, mIoU 80.2."""


def _csv_row(name: str, index: int = 0) -> dict[str, str]:
    with open(references.REFERENCE_DIR / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))[index]


def _results(tmp_path, *models: str):
    path = tmp_path / "results.csv"
    for i, model in enumerate(models):
        append_row(
            path,
            row_from_result(
                evaluation_result(i),
                model=model,
                dataset="synthetic-v1",
                dataset_kind="synthetic",
                split="val",
                commit="c",
                date="d",
            ),
            markdown=False,
        )
    return path


def test_deltas_are_ours_minus_reference_for_every_class(tmp_path):
    ours = load_ours(_results(tmp_path, "pspnet"))
    ref_raw = _csv_row("pspnet-paper-test")
    table = compare_rows(ours, references.load("pspnet-paper-test").iloc[0].to_dict())
    for name in CLASS_COLUMNS:
        if math.isnan(ours[name]):
            assert math.isnan(table.loc[name, "delta"])
        else:
            assert table.loc[name, "delta"] == ours[name] - float(ref_raw[name])
    assert table.loc["miou", "delta"] == ours["miou"] - 80.2009
    assert list(table["name"][:3]) == ["road", "swalk", "build."]


def test_unpublished_reference_values_give_no_delta():
    ours = {name: 50.0 for name in CLASS_COLUMNS} | {"miou": 50.0}
    table = compare_rows(ours, references.load("pspnet-official-val").iloc[1].to_dict())
    assert table.loc[list(CLASS_COLUMNS), "delta"].isna().all()
    assert table.loc["miou", "delta"] == 50.0 - 80.91


def test_the_seed_reference_row_rounds_to_the_seed_table():
    row = references.load("pspnet-paper-test").iloc[0]
    assert [round(row[c], 1) for c in CLASS_COLUMNS] == SEED_ROW
    assert round(row["miou"], 1) == 80.2
    assert row["split"] == "test"


def test_every_reference_row_names_its_source_split_and_protocol():
    assert references.available()[0] == references.DEFAULT_REFERENCE
    for name in references.available():
        frame = references.load(name)
        for _, row in frame.iterrows():
            assert row["source"] and row["url"].startswith("http") and row["protocol"]
            assert row["split"] in ("val", "test")
            assert 0 < row["miou"] < 100
            published = [row[c] for c in CLASS_COLUMNS if not math.isnan(row[c])]
            if len(published) == len(CLASS_COLUMNS):  # a complete per-class row agrees with its mIoU
                assert sum(published) / len(published) == pytest.approx(row["miou"], abs=0.01)
            elif published:  # a source read only in part (a cut-off page): the notes say so
                assert "cut off" in row["notes"]


def test_unknown_reference_lists_the_available_ones():
    with pytest.raises(UserError, match="available: pspnet-paper-test"):
        references.load("no-such-table")


def test_compare_cli_prints_text_and_markdown_with_deltas(tmp_path, capsys):
    path = _results(tmp_path, "pspnet")
    ours = load_ours(path)
    expected = f"{ours['road'] - 98.6397:+.1f}"
    assert main(["compare", str(path), "--reference", "pspnet-paper-test"]) == 0
    text = capsys.readouterr().out
    road = next(line for line in text.splitlines() if line.startswith("road "))
    assert road.split() == ["road", f"{ours['road']:.1f}", "98.6", expected]
    assert "synthetic dataset: not comparable" in text and "splits differ: ours val, reference test" in text

    assert main(["compare", str(path), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert f"| road | {ours['road']:.1f} | 98.6 | {expected} |" in md
    assert "| mIoU |" in md


def test_compare_picks_rows_by_model_or_index(tmp_path):
    path = _results(tmp_path, "fcn", "pspnet", "fcn")
    assert load_ours(path, model="pspnet")["_row"] == 1
    assert load_ours(path, model="fcn")["_row"] == 2
    assert load_ours(path, row=0)["model"] == "fcn"
    assert load_ours(path)["_row"] == 2
    with pytest.raises(UserError, match="models present: fcn, pspnet"):
        load_ours(path, model="unet")
    with pytest.raises(UserError, match="out of range"):
        load_ours(path, row=3)


def test_compare_reads_a_run_folder_with_only_cityscapes_json(tmp_path):
    result = evaluation_result(5)
    run = tmp_path / "run"
    result.write_json(run / "result.json")
    ours = load_ours(run)
    assert ours["road"] == pytest.approx(result.class_iou["road"] * 100)
    assert ours["miou"] == pytest.approx(result.miou * 100)
    assert math.isnan(ours["train"])


def test_empty_results_and_missing_files_are_clear_errors(tmp_path, capsys):
    empty = tmp_path / "results.csv"
    empty.write_text("model,dataset\n")
    with pytest.raises(UserError, match="no result rows yet"):
        load_ours(empty)
    assert main(["compare", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv does not exist" in capsys.readouterr().err
    assert main(["compare", str(empty), "--reference", "nope"]) == 2
    assert "unknown reference 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data, needle",
    [
        ([{"classScores": {"road": 0.9}}], "holds a JSON list, not an object"),
        ("results", "holds a JSON str, not an object"),
        ({"classScores": {"road": "0.9"}}, "classScores.road is '0.9', not a number in 0..1 or null"),
        ({"classScores": {}, "averageScoreClasses": "high"}, "averageScoreClasses is 'high'"),
        ({"model": "pspnet", "miou": "high"}, "miou is 'high', not a number in 0..100"),
    ],
)
def test_json_that_is_not_a_score_object_is_a_clear_error(tmp_path, capsys, data, needle):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    assert main(["compare", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}" in err and needle in err and "Traceback" not in err


def test_null_and_missing_json_scores_stay_missing(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"classScores": {"road": None, "sky": 0.5}, "averageScoreClasses": 0.5}))
    ours = load_ours(path)
    assert math.isnan(ours["road"]) and ours["sky"] == 50.0 and math.isnan(ours["iiou"])


def test_compare_plot_saves_the_bars_against_the_reference(tmp_path, capsys):
    from PIL import Image

    from tests.plot_helpers import expected_size

    path = _results(tmp_path, "pspnet")
    png = tmp_path / "out" / "bars.png"
    assert main(["compare", str(path), "--reference", "pspnet-paper-test", "--plot", str(png)]) == 0
    assert f"plot: {png}" in capsys.readouterr().out
    with Image.open(png) as im:
        assert im.size == expected_size("bars")


def test_a_row_of_another_model_is_never_compared_with_pspnets_table(tmp_path, capsys):
    path = _results(tmp_path, "pspnet", "espnet")  # the ESPNet row last, naming no reference row
    assert main(["compare", str(path)]) == 2
    assert "model espnet) names no reference row: pass --reference" in capsys.readouterr().err
    assert main(["compare", str(path), "--reference", "espnet-authors"]) == 0
    assert "ESPNet (p=2, q=8)" in capsys.readouterr().out
    assert main(["compare", str(path), "--row", "0"]) == 0  # pspnet: the seed table as before
    assert "PSPNet (fine+coarse)" in capsys.readouterr().out


def test_an_eval_json_is_labelled_by_its_file_not_its_folder(tmp_path):
    result = evaluation_result(5)
    result.write_json(tmp_path / "preds" / "eval.json")
    assert load_ours(tmp_path / "preds" / "eval.json")["model"] == str(tmp_path / "preds" / "eval.json")
