"""`bench run --seeds`: one training run per seed on the tiny synthetic set, one row of their mean and std."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.cli import main
from bench.report import results
from bench.report.seeds import mean_std
from bench.run import run_seeds
from bench.training.recipes import Recipe

TINY_RECIPE = Recipe(steps=2, batch=2, crop=(64, 64), lr=0.01, name="tiny-test")


@pytest.mark.slow
def test_two_seeds_train_twice_and_write_one_row_with_mean_and_std(tiny_dataset: Path, tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text("# demo\n\n<!-- results:begin -->\n<!-- results:end -->\n")
    results_csv = tmp_path / "results" / "results.csv"
    row = run_seeds(
        "pspnet",
        (0, 1),
        dataset=str(tiny_dataset),
        preset="tiny",
        recipe=TINY_RECIPE,
        readme=readme,
        results_csv=results_csv,
        runs_dir=tmp_path / "results" / "runs",
        checkpoint_root=tmp_path / "checkpoints",
        workers=1,
        progress=False,
    )
    (written,) = results.read_rows(results_csv).to_dict("records")
    assert written["n_seeds"] == 2 and written["seeds"] == "0,1" and row["seeds"] == "0,1"
    per_seed = results.read_rows(tmp_path / row["run_dir"] / "seeds.csv").to_dict("records")
    assert [r["seeds"] for r in per_seed] == ["0", "1"] and all(r["n_seeds"] == 1 for r in per_seed)
    checkpoints = [Path(r["checkpoint"]) for r in per_seed]
    assert checkpoints[0].parent != checkpoints[1].parent  # trained once per seed, cached apart
    assert checkpoints[1].parent.name.endswith("-seed1") and not checkpoints[0].parent.name.endswith("seed0")
    for column in ("miou", "road", "iiou"):
        mean, std = mean_std(r[column] for r in per_seed)
        assert written[column] == pytest.approx(mean, rel=1e-5)  # 6 significant digits in the CSV
        assert math.isclose(written[f"{column}_std"], std, rel_tol=1e-5, abs_tol=1e-6)
    assert "| n=2 |" in results_csv.with_suffix(".md").read_text()
    assert "No full-split results yet" in readme.read_text()  # 3 frames of a tiny set: partial, not shown


def test_bad_seeds_are_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--seeds", "0,0"])
    assert exit_info.value.code == 2 and "repeats a seed" in capsys.readouterr().err


@pytest.mark.parametrize("argv, seeds", [(["--seeds", "0,2"], (0, 2)), (["--seed", "5"], (5,)), ([], (0,))])
def test_the_cli_passes_the_seeds_to_the_loop(monkeypatch, argv, seeds):
    import bench.run

    calls = []
    monkeypatch.setattr(bench.run, "run_seeds", lambda model, s, **options: calls.append((model, s, options)))
    assert main(["run", "--model", "fcn", "--no-readme", *argv]) == 0
    ((model, passed, options),) = calls
    assert (model, passed, options["readme"]) == ("fcn", seeds, None) and "seed" not in options
