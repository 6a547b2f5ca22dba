"""Seed variance: per-seed rows become one row with mean and sample std; tables say n and show the spread;
results files written before the seed columns keep working (their rows are n=1)."""

from __future__ import annotations

import csv
import math
import statistics

import pytest

from bench.report import results, seeds
from bench.report.readme import update_readme
from bench.report.results import COLUMNS, SCORE_COLUMNS, read_rows, row_from_result
from data.errors import UserError
from tests.cityscapes_files import evaluation_result


def _row(i: int, **extra) -> dict:
    fields = dict(model="pspnet", dataset="synthetic-v1", dataset_kind="synthetic", split="val", commit="c")
    fields["identity"] = {"dataset": "synthetic-v1", "scope": "full"}  # a whole split: shown in the README
    fields.update(extra)
    return row_from_result(evaluation_result(i), checkpoint=f"ckpt-{i}.keras", seed=i, **fields)


@pytest.mark.parametrize("text, expected", [("0,1,2", (0, 1, 2)), (" 7 ", (7,)), ("3, 1", (3, 1))])
def test_parse_seeds(text, expected):
    assert seeds.parse_seeds(text) == expected


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a,b", "comma-separated"),
        ("", "comma-separated"),
        ("-1", "from 0 to 4,294,967,295"),
        ("4294967296", "from 0 to 4,294,967,295"),
        ("1,1", "repeats a seed"),
    ],
)
def test_bad_seeds_are_a_clear_error(text, needle):
    with pytest.raises(UserError, match=needle):
        seeds.parse_seeds(text)


def test_mean_and_sample_std():
    assert seeds.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert seeds.mean_std([4.0, math.nan, 6.0]) == (5.0, math.sqrt(2.0))  # NaN: left out, not a 0
    mean, std = seeds.mean_std([5.0])
    assert mean == 5.0 and math.isnan(std)
    assert all(math.isnan(v) for v in seeds.mean_std([math.nan, None]))


def test_three_seeds_give_the_mean_and_std_of_every_score():
    rows = [_row(i, predict_stats={"images_per_s": 1.0 + i}) for i in range(3)]
    row = seeds.aggregate(rows, (0, 1, 2))
    for column in SCORE_COLUMNS:
        values = [r[column] for r in rows if not math.isnan(r[column])]
        if not values:  # 'train' is absent from the ground truth of every seed
            assert math.isnan(row[column]) and math.isnan(row[f"{column}_std"])
            continue
        assert row[column] == pytest.approx(statistics.fmean(values), abs=1e-12)
        assert row[f"{column}_std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
    assert row["miou_std"] > 0  # the three evaluations differ
    assert row["n_seeds"] == 3 and row["seeds"] == "0,1,2"
    assert row["checkpoint"] == "ckpt-0.keras; ckpt-1.keras; ckpt-2.keras"
    assert "mean and sample std over seeds 0,1,2" in row["notes"]
    assert row["images_per_s"] == 2.0  # speed figures: the mean


def test_a_single_run_says_n_1_and_has_no_std():
    row = _row(4)
    assert row["n_seeds"] == 1 and row["seeds"] == "4"
    assert all(row[c] is None for c in results.STD_COLUMNS)
    one = seeds.aggregate([row], (4,))
    assert one["miou"] == row["miou"] and math.isnan(one["miou_std"]) and one["n_seeds"] == 1


def test_rows_of_different_benchmarks_are_not_averaged():
    with pytest.raises(UserError, match="differ in model"):
        seeds.aggregate([_row(0), _row(1, model="fcn")], (0, 1))


def test_the_row_the_markdown_and_the_readme_carry_mean_std_and_n(tmp_path):
    path = tmp_path / "results" / "results.csv"
    path.parent.mkdir()
    results.append_row(path, _row(5))  # a single run first
    row = seeds.append_aggregate(path, [_row(i) for i in range(3)], (0, 1, 2))
    frame = read_rows(path)
    assert frame.loc[1, "miou_std"] == pytest.approx(row["miou_std"], rel=1e-5)  # 6 significant digits
    assert frame.loc[1, "n_seeds"] == 3 and frame.loc[1, "seeds"] == "0,1,2"
    assert frame.loc[0, "n_seeds"] == 1 and math.isnan(frame.loc[0, "miou_std"])
    markdown = path.with_suffix(".md").read_text()
    cell = f"{row['miou']:.1f} ± {row['miou_std']:.1f}"
    assert "| n=3 |" in markdown and f"| {cell} |" in markdown and "| n=1 |" in markdown
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\n<!-- results:end -->\n")
    update_readme(readme, path)
    table = [line for line in readme.read_text().splitlines() if line.startswith("| pspnet |")]
    assert table[0].startswith("| pspnet | synthetic-v1 (*synthetic*) | val | 2 | whole | n=3 |")
    assert table[0].endswith(f"| {cell} |")


def test_a_results_file_from_before_the_seed_columns_keeps_working(tmp_path):
    path = tmp_path / "results.csv"
    before = [c for c in COLUMNS if c not in results.SEED_COLUMNS]
    old = {k: results.format_value(v) for k, v in _row(0).items() if k in before}
    path.write_text(results.serialize(before, [old]))
    frame = read_rows(path)
    assert math.isnan(frame.loc[0, "n_seeds"]) and seeds.seed_count(frame.iloc[0].to_dict()) == 1
    seeds.append_aggregate(path, [_row(1), _row(2)], (1, 2))
    with open(path, newline="") as f:
        first, second = list(csv.DictReader(f))
    assert {k: first[k] for k in before} == old and first["n_seeds"] == "" and second["n_seeds"] == "2"
    assert "| n=1 |" in path.with_suffix(".md").read_text()


def test_a_sweep_runs_each_seed_then_appends_one_row_and_updates_the_readme(tmp_path, capsys):
    from bench.report.compare import load_ours

    results_csv, runs = tmp_path / "results" / "results.csv", tmp_path / "results" / "runs"
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:begin -->\n<!-- results:end -->\n")
    calls = []

    def run_one(seed, seeds_csv):
        calls.append(seed)
        row = _row(seed)
        results.append_row(seeds_csv, row)
        return row

    row = seeds.sweep(run_one, (3, 1), model="pspnet", results_csv=results_csv, runs_dir=runs, readme=readme)
    assert calls == [3, 1]
    assert "seed 3 (1 of 2)" in capsys.readouterr().out
    frame = read_rows(results_csv)
    assert len(frame) == 1 and frame.loc[0, "n_seeds"] == 2 and frame.loc[0, "seeds"] == "3,1"
    (folder,) = runs.iterdir()
    assert folder.name.endswith("_pspnet_seeds-3-1") and len(read_rows(folder / "seeds.csv")) == 2
    assert load_ours(folder)["miou_std"] == pytest.approx(row["miou_std"])
    assert "| n=2 |" in readme.read_text()


def test_a_broken_results_file_stops_the_sweep_before_any_seed_runs(tmp_path):
    results_csv = tmp_path / "results.csv"
    results_csv.write_text("model,miou\npspnet,50,extra\n")
    calls = []
    with pytest.raises(UserError, match="line 2 has more fields"):
        seeds.sweep(
            lambda seed, csv: calls.append(seed),
            (0, 1),
            model="m",
            results_csv=results_csv,
            runs_dir=tmp_path / "runs",
        )
    assert calls == [] and not (tmp_path / "runs").exists()
