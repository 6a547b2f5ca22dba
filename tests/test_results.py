"""results.csv: schema, atomic and locked appends, old files with fewer columns, rows from a result."""

from __future__ import annotations

import csv
import math
import multiprocessing
import os
import subprocess
import sys

import pytest

from bench.common import atomic
from bench.report import results
from bench.report.results import CLASS_COLUMNS, COLUMNS, append_row, read_rows
from data.errors import UserError
from tests.cityscapes_files import evaluation_result


def _row(i: int = 0, stats: dict | None = None, **extra) -> dict:
    row = results.row_from_result(
        evaluation_result(i),
        model="pspnet",
        dataset="synthetic-v1",
        dataset_kind="synthetic",
        split="val",
        preset="tiny",
        train_steps=10 + i,
        commit="abc1234",
        date=f"2026-01-01T00:00:{i:02d}Z",
        predict_stats={"images_per_s": 2.5, **(stats or {})},
    )
    row.update(extra)
    return row


def _raw(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_first_append_writes_schema_header_and_the_row(tmp_path):
    path = append_row(tmp_path / "results.csv", _row())
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert header == list(COLUMNS)
    (only,) = _raw(path)
    assert only["model"] == "pspnet" and only["dataset_kind"] == "synthetic" and only["train_steps"] == "10"
    assert only["train"] == ""  # NaN (class absent) is written as an empty cell


def test_append_keeps_earlier_rows_byte_for_byte(tmp_path):
    path = tmp_path / "results.csv"
    append_row(path, _row(0))
    before = path.read_bytes()
    append_row(path, _row(1))
    after = path.read_bytes()
    assert after.startswith(before)
    assert len(_raw(path)) == 2


def test_results_md_is_rendered_next_to_the_csv(tmp_path):
    append_row(tmp_path / "results.csv", _row(0))
    md = (tmp_path / "results.md").read_text()
    assert "pspnet [tiny]" in md and "synthetic-v1 (*synthetic*)" in md
    assert "| road | swalk |" in md and "not comparable" in md


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_crash_mid_append_leaves_the_old_file_intact_and_no_temp_file(tmp_path, monkeypatch, step):
    """Crash once the temp file is written but not yet durable, or while renaming it over the old file."""
    path = tmp_path / "results.csv"
    append_row(path, _row(0))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError(f"simulated crash in {step}")

    monkeypatch.setattr(os, step, crash)
    with pytest.raises(UserError, match="simulated crash"):
        append_row(path, _row(1))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.csv.lock", "results.csv", "results.md"]
    append_row(path, _row(2))  # the lock was released: the next append works
    assert [r["train_steps"] for r in _raw(path)] == ["10", "12"]


def _append_many(path: str, start: int, count: int) -> None:
    for i in range(start, start + count):
        append_row(path, _row(i % 50, notes=f"writer row {i}"), markdown=False)


def test_two_processes_appending_at_once_lose_no_rows(tmp_path):
    path = str(tmp_path / "results.csv")
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_append_many, args=(path, k * 100, 15)) for k in range(2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    notes = sorted(r["notes"] for r in _raw(path))
    assert notes == sorted(f"writer row {i}" for k in range(2) for i in range(k * 100, k * 100 + 15))


def test_lock_is_exclusive_between_processes(tmp_path):
    """A second process cannot take the lock while the first holds it (checked with a non-blocking try)."""
    target = tmp_path / "results.csv"
    code = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'a+b')\n"
        "try:\n    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n"
        "    sys.exit(3)\nsys.exit(0)\n"
    )
    lock_file = tmp_path / ".results.csv.lock"
    with atomic.locked(target):
        held = subprocess.run([sys.executable, "-c", code, str(lock_file)])
    free = subprocess.run([sys.executable, "-c", code, str(lock_file)])
    assert (held.returncode, free.returncode) == (3, 0)


def test_old_file_without_new_columns_is_read_and_appended_to(tmp_path):
    path = tmp_path / "results.csv"
    old_header = ["model", "dataset", "split", "mode", "commit", "date", *CLASS_COLUMNS, "miou", "legacy_col"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(old_header)
        writer.writerow(
            ["fcn", "cityscapes", "val", "whole", "0000000", "2025-01-01", *["50.5"] * 19, "50.5", "kept"]
        )
    frame = read_rows(path)
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS) and frame.loc[0, "miou"] == 50.5
    assert frame.loc[0, "notes"] == "" and math.isnan(frame.loc[0, "iiou"])

    append_row(path, _row(0))
    old, new = _raw(path)
    assert old["model"] == "fcn" and old["road"] == "50.5" and old["legacy_col"] == "kept"
    assert old["iiou"] == "" and old["images_per_s"] == ""  # columns the old file lacked: empty
    assert new["legacy_col"] == "" and new["images_per_s"] == "2.5"
    assert list(read_rows(path)["model"]) == ["fcn", "pspnet"]


def test_a_row_with_an_unknown_key_adds_a_column_at_the_end(tmp_path):
    path = tmp_path / "results.csv"
    append_row(path, _row(0))
    append_row(path, _row(1, gpu="none"))
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert header[-1] == "gpu"
    assert [r["gpu"] for r in _raw(path)] == ["", "none"]


def test_row_from_result_is_percent_with_nan_as_empty():
    result = evaluation_result(3)
    row = _row(3)
    assert row["road"] == pytest.approx(result.class_iou["road"] * 100, abs=1e-12)
    assert row["miou"] == pytest.approx(result.miou * 100, abs=1e-12)
    assert row["iiou"] == pytest.approx(result.iiou * 100, abs=1e-12)
    assert row["category_iiou"] == pytest.approx(result.category_iiou_mean * 100, abs=1e-12)
    assert row["eval_seconds"] > 0 and row["n_images"] == 2 and row["images_per_s"] == 2.5
    assert math.isnan(row["train"]) and results.format_value(row["train"]) == ""
    assert list(row)[: len(COLUMNS)] == list(COLUMNS)


def test_row_from_result_rejects_an_unknown_dataset_kind():
    with pytest.raises(UserError, match="dataset_kind"):
        results.row_from_result(
            evaluation_result(), model="m", dataset="d", dataset_kind="cityscapes", split="val"
        )


def test_options_are_written_sorted_and_compact():
    row = results.row_from_result(
        evaluation_result(),
        model="m",
        dataset="d",
        dataset_kind="real",
        split="val",
        options={"width": 8, "depth": 50},
        commit="x",
    )
    assert row["options"] == "depth=50;width=8"


def test_row_names_its_recipe_and_old_files_read_with_an_empty_recipe(tmp_path):
    old = {k: v for k, v in _row(0).items() if k != "recipe"}  # a row written before the column existed
    path = append_row(tmp_path / "results.csv", old)
    append_row(
        path,
        results.row_from_result(
            evaluation_result(1),
            model="m",
            dataset="d",
            dataset_kind="real",
            split="val",
            recipe="mmseg-80k",
            commit="x",
        ),
    )
    frame = read_rows(path)
    assert list(frame["recipe"]) == ["", "mmseg-80k"]


def test_read_rows_of_a_missing_file_names_it():
    with pytest.raises(UserError, match="nope.csv does not exist"):
        read_rows("/nonexistent/nope.csv")


def test_git_commit_outside_git_is_unknown(tmp_path):
    assert results.git_commit(tmp_path) == "unknown"


def test_git_commit_is_short_hash_with_dirty_marker(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert results.git_commit(tmp_path) == head
    (tmp_path / "f.txt").write_text("b")
    assert results.git_commit(tmp_path) == head + "+dirty"


def test_git_commit_is_not_dirtied_by_the_tools_own_outputs(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    readme = "intro\n<!-- results:begin -->\nold\n<!-- results:end -->\nend\n"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.csv").write_text("a\n")
    (tmp_path / "README.md").write_text(readme)
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    head = results.git_commit(tmp_path)
    (tmp_path / "results" / "results.csv").write_text("a\nb\n")
    (tmp_path / "README.md").write_text(readme.replace("old", "new rows"))
    assert results.git_commit(tmp_path) == head  # make bench's own edits
    (tmp_path / "README.md").write_text(readme.replace("intro", "edited by hand"))
    assert results.git_commit(tmp_path) == head + "+dirty"
    (tmp_path / "README.md").write_text(readme)
    (tmp_path / "code.py").write_text("x = 2\n")
    assert results.git_commit(tmp_path) == head + "+dirty"


def _cut_line(text: str, line: int, fields: int) -> str:
    lines = text.splitlines()
    lines[line - 1] = ",".join(lines[line - 1].split(",")[:fields])
    return "\n".join(lines) + "\n"


def _damaged(tmp_path, text_edit=None, raw: bytes | None = None):
    path = tmp_path / "results.csv"
    append_row(path, _row(0))
    append_row(path, _row(1))
    if raw is not None:
        path.write_bytes(path.read_bytes() + raw)
    if text_edit is not None:
        path.write_text(text_edit(path.read_text()))
    return path


@pytest.mark.parametrize(
    "edit, raw, needle",
    [
        (None, b"pspnet,\xe9\n", r"is not UTF-8 text \(line 4"),
        (lambda t: _cut_line(t, 2, 10), None, r"line 2 has 10 of the header's \d+ fields"),
        (lambda t: t.replace("synthetic-v1,synthetic,val", "synthetic-v1,synthetic", 1), None, r"line 2 has"),
        (
            lambda t: t.rstrip("\n") + "\n" + t.splitlines()[1].replace(",", ",,", 1) + "\n",
            None,
            r"line 4 has more",
        ),
    ],
    ids=["invalid-utf8", "short-row", "one-field-missing", "one-field-too-many"],
)
def test_malformed_rows_are_named_never_read_as_missing(tmp_path, edit, raw, needle):
    path = _damaged(tmp_path, edit, raw)
    with pytest.raises(UserError, match=needle) as info:
        read_rows(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("value", ["n/a", "31,4", "high", "1e999", "-2", "101"])
def test_a_score_that_is_not_a_percentage_names_row_column_and_file(tmp_path, value):
    path = _damaged(tmp_path)
    rows = _raw(path)
    rows[1]["road"] = value
    path.write_text(results.serialize(list(rows[0]), rows))
    with pytest.raises(UserError, match=rf"{path} line 3: column road is '{value}', not a percentage"):
        read_rows(path)


def test_empty_cells_are_missing_values_not_errors(tmp_path):
    path = _damaged(tmp_path)
    frame = read_rows(path)
    assert math.isnan(frame.loc[0, "train"]) and frame.loc[0, "notes"] == ""


def test_check_results_file_before_the_work(tmp_path):
    """What `bench run` calls first: a broken or unwritable results file stops it before predicting."""
    assert results.check_results_file(tmp_path / "new" / "results.csv") == tmp_path / "new" / "results.csv"
    assert not (tmp_path / "new").exists()
    good = _damaged(tmp_path)
    assert results.check_results_file(good) == good
    good.write_bytes(good.read_bytes() + b"\xff\n")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        results.check_results_file(good)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="afile is a file, not a folder"):
        results.check_results_file(tmp_path / "afile" / "results.csv")
    with pytest.raises(UserError, match="is not a file"):
        results.check_results_file(tmp_path)


WHERE = {
    "device": "CPU: AMD EPYC 9654",
    "precision": "bf16",
    "batch": 1,
    "input_size": "512x1024",
    "threads": 2,
    "tensorflow": "2.21.0",
    "runtime": "tensorflow",
}


def test_rows_say_where_they_ran_and_files_without_those_columns_keep_working(tmp_path):
    path = tmp_path / "results.csv"
    before = [c for c in COLUMNS if c not in results.ENVIRONMENT_COLUMNS]  # the schema before they existed
    old_row = {k: results.format_value(v) for k, v in _row(0).items() if k in before}
    path.write_text(results.serialize(before, [old_row]))
    row = _row(1, stats=WHERE)
    append_row(path, row)

    old, new = _raw(path)
    assert all(old[c] == "" for c in results.ENVIRONMENT_COLUMNS)
    assert {c: new[c] for c in results.ENVIRONMENT_COLUMNS} == {k: str(v) for k, v in WHERE.items()}
    frame = read_rows(path)
    assert math.isnan(frame.loc[0, "batch"]) and frame.loc[1, "batch"] == 1 and frame.loc[1, "threads"] == 2
    markdown = path.with_suffix(".md").read_text()
    assert "| CPU: AMD EPYC 9654, 2 threads, bf16, batch 1, 512x1024, TF 2.21.0 |" in markdown
    assert "| 2.50 | - |" in markdown  # the old row: images/s, and '-' where it ran


def test_rows_carry_the_other_measures_and_files_without_them_read_as_before(tmp_path):
    from bench.evaluation.measures import averages
    from bench.report.results import MEASURE_COLUMNS

    path = tmp_path / "results.csv"
    old_columns = [c for c in COLUMNS if c not in MEASURE_COLUMNS]
    old = {k: v for k, v in _row(0).items() if k in old_columns}
    results.append_row(path, old, columns=tuple(old_columns))  # a file written before the measures
    before = path.read_text()
    frame = read_rows(path)
    assert math.isnan(frame.loc[0, "aacc"]) and frame.loc[0, "model"] == "pspnet"
    row = _row(1)
    want = averages(evaluation_result(1).confusion)
    assert row["aacc"] == pytest.approx(100 * want["aAcc"]) and row["fwiou"] == pytest.approx(
        100 * want["fwIoU"]
    )
    append_row(path, row)
    assert path.read_text().splitlines()[1] == before.splitlines()[1] + "," * len(MEASURE_COLUMNS)
    frame = read_rows(path)
    assert frame.loc[1, "mdice"] == pytest.approx(100 * want["mDice"], rel=1e-5)
    assert math.isnan(frame.loc[0, "mdice"])
