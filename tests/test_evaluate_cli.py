"""`python -m bench evaluate` prints the per-class table and writes cityscapesScripts' JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from bench.cli import main
from data.labels import SHORT_NAMES
from tests.cityscapes_files import H, W, lid, write_gt, write_pred

KEY = "ulm_000000_000019"


def test_cli_prints_short_name_table_iiou_categories_and_writes_json(tmp_path, capsys):
    labels = np.full((H, W), lid("road"), np.uint8)
    instances = labels.astype(np.uint16)
    labels[:16, :32] = lid("person")
    instances[:16, :32] = lid("person") * 1000
    pred = labels.copy()
    pred[:8, :32] = lid("road")  # half the person missed: person IoU 50%, road IoU 7680/7936
    write_gt(tmp_path / "gt", KEY, labels, instances)
    write_pred(tmp_path / "pred", KEY, pred)
    out = tmp_path / "r" / "scores.json"
    assert (
        main(["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--json", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    header, _, row = text.splitlines()[:3]
    assert [c.strip() for c in header.strip("|").split("|")][1:] == [*SHORT_NAMES, "mIoU"]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{100 * 7680 / 7936:.1f}" and cells[1 + SHORT_NAMES.index("person")] == "50.0"
    assert cells[1 + SHORT_NAMES.index("sky")] == "-"
    assert cells[-1] == f"{(100 * 7680 / 7936 + 50) / 2:.1f}"
    assert "| iIoU |" in text and "| vehicle |" in text and "1 image," in text
    data = json.loads(out.read_text())
    assert data["classScores"]["person"] == 0.5 and data["categoryInstScores"]["vehicle"] is None
    assert data["averageScoreInstClasses"] == 0.5


def test_evaluator_does_not_import_tensorflow():
    code = (
        "import sys, bench.evaluation, bench.evaluation.command, bench.evaluation.reference; "
        "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_evaluate_without_gt_names_the_option(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    assert main(["evaluate", "--pred", str(tmp_path)]) == 2
    assert "pass --gt ROOT" in capsys.readouterr().err
