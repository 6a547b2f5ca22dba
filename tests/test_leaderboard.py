"""The published leaderboard: its rows agree with the PSPNet reference and with themselves; our row is placed
per class (rank, best published value and method, gap); the CLI prints it and draws the range plot."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
from PIL import Image

from bench.cli import main
from bench.common.paths import REFERENCE_DIR
from bench.report import leaderboard, references
from bench.report.results import CLASS_COLUMNS, append_row, row_from_result
from data.errors import UserError
from tests.cityscapes_files import evaluation_result
from tests.plot_helpers import expected_size

AVERAGES = ("miou", "iiou", "category_miou", "category_iiou")


def test_the_pspnet_row_is_the_pspnet_reference_row_per_class_and_averages():
    board = leaderboard.load()
    ours = board[board["method"] == "PSPNet"]
    assert len(ours) == 1
    row, reference = ours.iloc[0], references.load("pspnet-paper-test").iloc[0]
    for column in (*CLASS_COLUMNS, "miou", "iiou", "category_miou"):
        assert row[column] == reference[column], column
    assert row["url"] == reference["url"] and row["training_data"] == "fine+coarse"


@pytest.mark.parametrize("name", leaderboard.TABLES)
def test_every_row_names_its_source_and_training_data_and_values_are_percentages(name):
    frame = leaderboard.load(name)  # the integrity check itself: raises on a bad row
    for row in frame.to_dict("records"):
        assert row["url"].startswith("https://") and row["source"]
        assert row["training_data"] in leaderboard.TRAINING_DATA or "training data not stated" in row["notes"]
        values = [row[c] for c in (*CLASS_COLUMNS, *AVERAGES) if not math.isnan(row[c])]
        assert values and all(0 < v < 100 for v in values)
        given = [row[c] for c in CLASS_COLUMNS if not math.isnan(row[c])]
        if len(given) == len(CLASS_COLUMNS):  # to the source's rounding (4 decimals: 1e-4 in all)
            assert abs(sum(given) / len(given) - row["miou"]) <= 1e-4
        elif given:
            assert "cut off" in row["notes"]
        else:
            assert "mIoU only" in row["notes"]
    assert set(frame["split"]) == {"test" if name == leaderboard.TEST_TABLE else "val"}


def test_the_test_table_has_a_dozen_methods_and_the_server_entries_give_all_four_averages():
    board = leaderboard.load()
    assert board["method"].nunique() >= 12
    server = board[board["url"].str.contains("cityscapes-dataset.com/method-details/")]
    assert len(server) >= 6
    assert server[list(AVERAGES)].notna().all().all()
    assert server["road"].notna().all()  # every stored page was read at least to its first class


def test_rounding_is_half_a_unit_of_the_last_printed_digit():
    assert leaderboard.rounding([80.2009, 93.2157]) == pytest.approx(5e-5)
    assert leaderboard.rounding([75.17, 80.2009]) == pytest.approx(5e-5)  # 75.17 printed without zeros
    assert leaderboard.rounding([82.3]) == pytest.approx(0.05)


def _copy_tables(tmp_path):
    for name in leaderboard.TABLES:
        shutil.copy(REFERENCE_DIR / f"{name}.csv", tmp_path / f"{name}.csv")
    return tmp_path / f"{leaderboard.TEST_TABLE}.csv"


def _edit(path, method, column, value):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame["method"] == method, column] = value
    frame.to_csv(path, index=False, lineterminator="\n")


def test_a_misread_class_value_breaks_the_mean_and_is_named(tmp_path):
    path = _copy_tables(tmp_path)
    _edit(path, "PSPNet", "road", "98.6497")  # one digit off: the mean moves by 0.0005 > 1e-4
    with pytest.raises(UserError, match=r"row 1 \(PSPNet\).*mean of its per-class IoUs"):
        leaderboard.load(reference_dir=tmp_path)


def test_empty_classes_without_a_reason_and_unknown_training_data_are_refused(tmp_path):
    path = _copy_tables(tmp_path)
    _edit(path, "DeepLabv3+", "notes", "")
    with pytest.raises(UserError, match=r"DeepLabv3\+\): 15 of 19 per-class IoUs"):
        leaderboard.load(reference_dir=tmp_path)
    path = _copy_tables(tmp_path)
    _edit(path, "DANet (CASIA_IVA_DANet_NoCoarse)", "training_data", "coarse")
    with pytest.raises(UserError, match="training_data is 'coarse'"):
        leaderboard.load(reference_dir=tmp_path)


def _board():
    nan = math.nan
    rows = [
        {"method": "A", "road": 60.0, "sidewalk": 50.0, "miou": 70.0},
        {"method": "B", "road": 40.0, "sidewalk": nan, "miou": 65.0},
        {"method": "C", "road": nan, "sidewalk": nan, "miou": 80.0},
    ]
    frame = pd.DataFrame(rows)
    for column in CLASS_COLUMNS:
        if column not in frame:
            frame[column] = nan
    return frame


def test_place_ranks_among_the_entries_that_give_the_class():
    ours = {"road": 50.0, "sidewalk": 50.0, "building": 10.0, "miou": 75.0}  # wall missing
    table = leaderboard.place(ours, _board())
    road = table.loc["road"]
    assert (road["n"], road["rank"], road["best"], road["best_method"]) == (2, 2.0, 60.0, "A")
    assert road["low"] == 40.0
    assert road["gap"] == -10.0
    assert table.loc["sidewalk", "rank"] == 1.0 and table.loc["sidewalk", "gap"] == 0.0  # a tie goes our way
    assert table.loc["miou", "rank"] == 2.0 and table.loc["miou", "best_method"] == "C"
    building = table.loc["building"]  # no published value
    assert building["n"] == 0 and math.isnan(building["rank"]) and building["best_method"] == ""
    assert math.isnan(table.loc["wall", "rank"]) and math.isnan(table.loc["wall", "gap"])
    assert list(table.index) == [*CLASS_COLUMNS, "miou"]


def test_compare_leaderboard_prints_the_placement_and_saves_the_range_plot(tmp_path, capsys):
    results = tmp_path / "results.csv"
    row = row_from_result(
        evaluation_result(1), model="pspnet", dataset="synthetic-v1", dataset_kind="synthetic", split="val"
    )
    append_row(results, row, markdown=False)
    png = tmp_path / "board.png"
    assert main(["compare", str(results), "--reference", "leaderboard", "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    board = leaderboard.load()
    assert f"{len(board)} published entries" in text and "the leaderboard is the Cityscapes test set" in text
    road = next(line for line in text.splitlines() if line.startswith("road "))
    expected = leaderboard.place(row, board).loc["road"]
    assert f"{int(expected['rank'])}/{int(expected['n']) + 1}" in road and expected["best_method"] in road
    with Image.open(png) as im:
        assert im.size == expected_size("ranges") == (1200, 500)
    assert main(["compare", str(results), "--reference", "leaderboard", "--markdown"]) == 0
    assert "| class | ours | rank |" in capsys.readouterr().out
