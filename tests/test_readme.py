"""README results section: regenerated between the markers only, idempotent byte for byte, clear errors."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.report import readme as readme_mod
from bench.report.results import append_row, row_from_result
from data.errors import UserError
from tests.cityscapes_files import evaluation_result

README = """# project

intro text stays

## Results

<!-- results:begin -->
hand-written text that will be replaced
<!-- results:end -->

## After

footer stays
"""


def _add(
    path,
    seed,
    *,
    model="pspnet",
    dataset="synthetic-v1",
    kind="synthetic",
    split="val",
    scope="full",
    tags="",
):
    identity = {
        "dataset": dataset,
        "scope": scope,
        "frame_size": "256x512",
        "frames_hash": "abc",
        "tags": tags,
    }
    append_row(
        path,
        row_from_result(
            evaluation_result(seed),
            model=model,
            dataset=dataset,
            dataset_kind=kind,
            split=split,
            commit="c",
            date=f"2026-01-01T00:00:{seed:02d}Z",
            identity=identity,
        ),
    )


def _section(text: str) -> str:
    return text.split(readme_mod.BEGIN)[1].split(readme_mod.END)[0]


@pytest.fixture
def project(tmp_path):
    (tmp_path / "README.md").write_text(README)
    (tmp_path / "results").mkdir()
    return tmp_path


def test_running_twice_changes_nothing_byte_for_byte(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    assert readme_mod.update_readme(readme, results) is True
    first, plot = readme.read_bytes(), (project / "results" / "latest_iou.png").read_bytes()
    assert readme_mod.update_readme(readme, results) is False
    assert readme.read_bytes() == first
    assert (project / "results" / "latest_iou.png").read_bytes() == plot


def test_only_the_text_between_the_markers_is_rewritten(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    readme_mod.update_readme(readme, results)
    text = readme.read_text()
    before, after = README.split(readme_mod.BEGIN)[0], README.split(readme_mod.END)[1]
    assert text.startswith(before + readme_mod.BEGIN) and text.endswith(readme_mod.END + after)
    assert "hand-written" not in text
    assert "](results/latest_iou.png)" in text and "](results/results.md)" in text


def test_latest_row_per_combination_labelled_with_its_dataset(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    _add(results, 2)  # same combination: replaces row 1 in the README
    _add(results, 3, model="fcn", dataset="cityscapes", kind="real")
    readme_mod.update_readme(readme, results)
    section = _section(readme.read_text())
    ours = [line for line in section.splitlines() if line.startswith("| pspnet") or line.startswith("| fcn")]
    assert len(ours) == 2
    assert ours[0].startswith("| pspnet | synthetic-v1 (*synthetic*) | val | 2 | whole |")
    assert ours[1].startswith("| fcn | cityscapes | val | 2 | whole |")
    expected_miou = f"{evaluation_result(2).miou * 100:.1f}"
    assert ours[0].endswith(f"| {expected_miou} |")
    assert "not comparable with numbers on real Cityscapes" in section


def test_reference_rows_and_sources_are_listed(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    readme_mod.update_readme(readme, results)  # no results yet: references only, no plot
    section = _section(readme.read_text())
    assert "No full-split results yet" in section
    assert "| PSPNet (fine+coarse) | pspnet-paper-test | test |" in section
    assert "| 98.6 | 86.6 | 93.2 |" in section and "| 76.9 | 80.2 |" in section
    assert "https://github.com/hszhao/PSPNet" in section
    assert not (project / "results" / "latest_iou.png").exists()


@pytest.mark.parametrize(
    "text, found",
    [
        ("# no markers\n", "found 0 and 0"),
        ("<!-- results:begin -->\n<!-- results:begin -->\n<!-- results:end -->\n", "found 2 and 1"),
        ("<!-- results:end -->\n<!-- results:begin -->\n", "comes before"),
    ],
)
def test_bad_markers_are_a_clear_error_and_the_readme_is_untouched(project, text, found):
    readme = project / "README.md"
    readme.write_text(text)
    with pytest.raises(UserError, match=found):
        readme_mod.update_readme(readme, project / "results" / "results.csv")
    assert readme.read_text() == text


def test_readme_cli_reports_updated_then_unchanged(project, capsys):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 4)
    args = ["readme", "--readme", str(readme), "--results", str(results)]
    assert main(args) == 0 and "updated" in capsys.readouterr().out
    assert main(args) == 0 and "unchanged" in capsys.readouterr().out
    assert main(["readme", "--readme", str(project / "missing.md")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_results_path_that_does_not_exist_is_an_error_and_the_readme_stays(project, capsys):
    """A typo (`resluts.csv`) used to say "updated" and replace the section with "No results yet"."""
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    assert main(["readme", "--readme", str(readme), "--results", str(results)]) == 0
    before = readme.read_bytes()
    capsys.readouterr()
    assert main(["readme", "--readme", str(readme), "--results", str(results.with_name("resluts.csv"))]) == 2
    err = capsys.readouterr().err
    assert "resluts.csv does not exist" in err
    assert readme.read_bytes() == before


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda p: p.write_bytes(p.read_bytes() + b"pspnet,\xff\n"), "is not UTF-8 text (line 3"),
        (lambda p: p.write_text(p.read_text() + "pspnet,synthetic-v1\n"), "line 3 has 2 of the header's"),
        (lambda p: p.write_text(p.read_text().rstrip("\n") + ",extra\n"), "line 2 has more fields"),
    ],
)
def test_a_broken_results_file_is_named_and_the_readme_stays(project, capsys, damage, needle):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    damage(results)
    assert main(["readme", "--readme", str(readme), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(results) in err and "Traceback" not in err
    assert readme.read_text() == README and not (project / "results" / "latest_iou.png").exists()


def test_plot_under_a_file_is_refused_before_anything_is_written(project, capsys):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    (project / "afile").write_text("x")
    plot = project / "afile" / "plot.png"
    assert main(["readme", "--readme", str(readme), "--results", str(results), "--plot", str(plot)]) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err
    assert readme.read_text() == README


def test_the_latest_row_is_placed_among_the_published_and_regenerating_changes_nothing(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1)
    _add(results, 2, model="fcn")  # the latest row is the one placed
    assert readme_mod.update_readme(readme, results) is True
    section = _section(readme.read_text())
    part = section.split("### Among published Cityscapes results")[1]
    assert "The latest row (fcn on synthetic-v1 (*synthetic*), val split)" in part
    assert "| class | ours | rank | lowest published | best published | best method | gap (pp) |" in part
    assert "](results/leaderboard.png)" in part
    assert "| PSPNet | fine+coarse | 98.6 | 86.6 |" in part  # the leaderboard, per class
    assert "| DeepLabv3+ | fine+coarse | 98.7 |" in part and "| 78.0 | - | - | - | - | 82.1 |" in part
    assert "| SegFormer MIT-B5 (mmseg, 1024x1024, 160k) |" in part  # the val-only table
    assert "| cityscapes-test-leaderboard |" not in section  # not repeated among the reference rows
    board_png = project / "results" / "leaderboard.png"
    first, plot = readme.read_bytes(), board_png.read_bytes()
    assert readme_mod.update_readme(readme, results) is False
    assert readme.read_bytes() == first and board_png.read_bytes() == plot


def test_without_results_the_leaderboard_is_listed_but_nothing_is_placed(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    readme_mod.update_readme(readme, results)
    section = _section(readme.read_text())
    assert "| PSPNet | fine+coarse | 98.6 |" in section and "The latest row" not in section
    assert not (project / "results" / "leaderboard.png").exists()


def test_only_full_split_rows_reach_the_readme_each_with_its_number_of_frames(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1, model="pspnet")
    _add(
        results,
        2,
        model="espnetv2",
        dataset="cityscapes-layout:cityscapes-sample",
        kind="real",
        scope="partial",
    )
    readme_mod.update_readme(readme, results)
    section = _section(readme.read_text())
    table = section.split("Published reference rows")[0]
    assert "| pspnet | synthetic-v1 (*synthetic*) | val | 2 | whole |" in table  # evaluation_result: 2 frames
    assert "espnetv2" not in section and "n frames" in table
    assert "The latest row (pspnet on synthetic-v1" in section  # plots and placing: the last full row


def test_a_readme_of_only_partial_rows_says_where_they_are(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1, scope="partial")
    readme_mod.update_readme(readme, results)
    assert "No full-split results yet" in _section(readme.read_text())


def test_rows_of_no_readme_runs_never_reach_the_readme(project):
    readme, results = project / "README.md", project / "results" / "results.csv"
    _add(results, 1, model="pspnet")
    _add(results, 2, model="fcn", tags="no-readme")  # `bench run --no-readme`, then a later `make bench`
    _add(results, 3, model="espnet", tags="baseline;hidden")
    readme_mod.update_readme(readme, results)
    section = _section(readme.read_text())
    assert "| pspnet |" in section and "| fcn |" not in section and "| espnet |" not in section
