"""`bench zoo` (bench/agree/zoo.py): the README's model zoo table between its markers, rows that say why they
were skipped where the shared files are absent, and (with ../shared) a shared ONNX file measured against its
authors' arg-max."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.agree import zoo
from bench.cli import main
from bench.common.paths import PROJECT_ROOT
from data.errors import UserError
from tests.shared_files import shared_dir, shared_file


def test_the_table_goes_between_the_markers_and_nowhere_else():
    text = f"# title\nbefore\n{zoo.BEGIN}\nold table\n{zoo.END}\nafter\n"
    new = zoo.replace_between_markers(text, "| new |\n", "README.md")
    assert new == f"# title\nbefore\n{zoo.BEGIN}\n| new |\n{zoo.END}\nafter\n"
    assert zoo.replace_between_markers(new, "| new |\n", "README.md") == new  # idempotent
    with pytest.raises(UserError, match="README.md needs one"):
        zoo.replace_between_markers("no markers here\n", "x", "README.md")
    with pytest.raises(UserError, match="needs one"):
        zoo.replace_between_markers(f"{zoo.END}\n{zoo.BEGIN}\n", "x", "README.md")


def test_the_readme_holds_the_markers_once():
    text = (PROJECT_ROOT / "README.md").read_text()
    assert text.count(zoo.BEGIN) == 1 and text.count(zoo.END) == 1 and "## Model zoo" in text


def test_without_the_shared_files_every_row_says_why(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{zoo.BEGIN}\n{zoo.END}\nrest\n")
    args = [
        "zoo",
        "--shared",
        str(tmp_path / "absent"),
        "--readme",
        str(readme),
        "--json",
        str(tmp_path / "z.json"),
    ]
    assert main(args) == 0
    rows = json.loads((tmp_path / "z.json").read_text())
    assert [r["model"] for r in rows] == [e.name for e in zoo.ZOO]
    assert all("skipped" in r and "absent" in r["skipped"] and str(tmp_path) in r["skipped"] for r in rows)
    text = readme.read_text()
    assert text.startswith(f"intro\n{zoo.BEGIN}\n| model |") and text.endswith(f"{zoo.END}\nrest\n")
    assert text.count("skipped:") == len(zoo.ZOO)
    assert "skipped C3NetV2 (ONNX)" in capsys.readouterr().out


def test_bad_options_are_refused_before_any_work(tmp_path, capsys):
    assert main(["zoo", "--only", "no such model"]) == 2
    assert "matches none of" in capsys.readouterr().err
    assert main(["zoo", "--frames", "0"]) == 2
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    assert main(["zoo", "--readme", str(readme)]) == 2
    assert "needs one" in capsys.readouterr().err and readme.read_text() == "no markers\n"


def test_their_arg_max_is_over_the_train_ids_brought_to_full_size(tmp_path):
    logits = np.zeros((20, 2, 3), np.float16)
    logits[19] = 9.0  # their background channel wins everywhere: not a train ID
    logits[4, 0, 1] = 5.0
    np.savez(tmp_path / f"{zoo.FRAME}_logits.npz", logits=logits)
    ids = zoo.their_train_ids(tmp_path)
    assert ids.shape == (4, 6) and ids[0, 2] == ids[1, 3] == 4 and ids[3, 5] == 0


@pytest.mark.slow
def test_a_shared_onnx_file_reproduces_its_authors(tmp_path):
    shared_file("weights/onnx/C3NetV2_argmax.onnx", "clovaai/c3_sinet (see shared/weights/onnx/README.md)")
    shared_file(zoo.IMAGE, "the real-frame fixture (see shared/weights/README.md)")
    out = tmp_path / "z.json"
    args = ["zoo", "--shared", str(shared_dir()), "--only", "C3NetV2 + arg-max", "--frames", "1"]
    assert main([*args, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["runtime"].split()[0] for r in rows] == ["onnxruntime", "openvino"]
    for row in rows:
        assert row["agreement_with_authors"] >= 99.5 and row["params"] > 100_000 and row["images_per_s"] > 0
