"""`bench perf model` in the field's language: per mode and precision, p50/p90, images/s, peak memory, rows
in the perf CSV and a README table beside mmsegmentation's published figure."""

from __future__ import annotations

import csv

import pytest

from bench.cli import main
from bench.perf.latency import PUBLISHED, Latency
from bench.perf.model import modes as model_latency


def a_row(mode: str = "whole", precision: str = "fp32") -> dict:
    case = model_latency.Case("pspnet", None, (1024, 2048), mode, precision)
    env = {"device": "GPU: 1x NVIDIA H100", "threads": 16, "tensorflow": "2.21.0"}
    return model_latency.row(
        case, Latency((0.1, 0.2, 0.3)), 2048.0, "device memory", xla=True, fold_bn=True, env=env
    )


def test_a_row_carries_every_figure_and_what_it_depends_on():
    row = a_row("slide", "bf16")
    assert set(row) == set(model_latency.COLUMNS)
    assert row["images_per_s"] == pytest.approx(5.0) and row["latency_p50_ms"] == 200.0
    assert (row["mode"], row["precision"], row["input_size"], row["warmup"]) == (
        "slide",
        "bf16",
        "1024x2048",
        5,
    )


def test_rows_append_to_the_perf_csv_in_its_own_columns(tmp_path):
    path = tmp_path / "perf.csv"
    model_latency.append_rows([a_row()], path)
    model_latency.append_rows([a_row("multiscale")], path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["mode"] for r in rows] == ["whole", "multiscale"]
    assert list(rows[0]) == list(model_latency.COLUMNS)  # not results.csv's columns


def test_the_readme_table_ends_with_mmsegmentations_published_figure_and_its_device():
    table = model_latency.readme_table([a_row(), a_row("whole", "bf16")])
    lines = table.strip().splitlines()
    assert lines[2].startswith(
        "| PSPNet-R50-D8 (ours) | whole | fp32 | 1024x2048 | GPU: 1x NVIDIA H100 | 5 |"
    )
    assert lines[-1].startswith("| PSPNet-R50-D8 (mmsegmentation, published) | whole | fp32 | 1024x2048 | ")
    assert f"| {PUBLISHED['device']} | 4.07 |" in lines[-1]


def test_an_unknown_mode_is_refused_before_any_timing(capsys):
    pytest.importorskip("tensorflow")
    assert (
        main(["perf", "model", "pspnet:tiny@64x128", "--modes", "whole,sliding", "--matmul-size", "64"]) == 2
    )
    assert "--modes whole,sliding: choose from whole, slide, multiscale" in capsys.readouterr().err


@pytest.mark.slow
def test_each_mode_is_timed_after_its_warm_up_and_written_as_a_row(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    out = tmp_path / "perf.csv"
    argv = ["perf", "model", "pspnet:tiny@64x128", "--modes", "whole,slide,multiscale", "--repeats", "2"]
    assert main([*argv, "--warmup", "1", "--matmul-size", "256", "--csv", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["mode"] for r in rows] == ["whole", "slide", "multiscale"]
    for r in rows:
        assert r["iterations"] == "2" and r["warmup"] == "1" and r["batch"] == "1"
        assert 0 < float(r["latency_p50_ms"]) <= float(r["latency_p90_ms"])
        assert float(r["images_per_s"]) > 0 and float(r["peak_memory_mb"]) > 0
        assert r["device"].startswith("CPU") and r["memory"] == "resident set"
    # multi-scale + flip runs the network 12 times a frame: it must be the slowest
    assert float(rows[2]["latency_p50_ms"]) > float(rows[0]["latency_p50_ms"])
    assert "(mmsegmentation, published)" in capsys.readouterr().out
