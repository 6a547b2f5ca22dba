"""The evaluator benchmark runs end to end on tiny frames and checks our scores equal cityscapesScripts'."""

from __future__ import annotations

import argparse

import numpy as np

from bench.evaluation import read_png
from bench.perf.evaluation import evaluator as perf_eval


def test_generated_pairs_have_instances_void_and_realistic_predictions(tmp_path):
    perf_eval.generate_pairs(tmp_path, 2, (128, 256), seed=1, progress=False)
    gt = sorted((tmp_path / "gt").rglob("*_labelIds.png"))
    inst = sorted((tmp_path / "gt").rglob("*_instanceIds.png"))
    preds = sorted((tmp_path / "pred").glob("*.png"))
    assert len(gt) == len(inst) == len(preds) == 2
    labels, instances, pred = read_png(gt[0]), read_png(inst[0]), read_png(preds[0])
    assert instances.dtype == np.uint16 and len(np.unique(instances[instances > 1000])) >= 5
    assert (labels == 1).any()  # ego vehicle: void GT present
    assert 0.5 < (pred == labels).mean() < 0.99  # mostly right, not trivially so


def test_benchmark_prints_both_ratios_and_agrees_with_cityscapesscripts(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    perf_eval.add_arguments(parser)
    args = parser.parse_args(
        ["--n", "2", "--size", "128x256", "--repeat", "1", "--workers", "2", "--out", str(tmp_path)]
    )
    assert perf_eval.run(args) == 0  # non-zero when the scores differ
    out = capsys.readouterr().out
    for line in ("cold `bench evaluate` vs", "warm `bench evaluate` vs", "in-loop from arrays   vs"):
        assert line in out
    assert "GT cache warm" in out and "in-loop from arrays, warm, 1 thread" in out
    assert "max |ours - cityscapesScripts| over all scores (uncached, cold, warm, in-loop): 0" in out
    assert not (tmp_path / "gt-cache").exists() or not list((tmp_path / "gt-cache").iterdir())


def test_speed_ratios_say_slower_when_they_are():
    from bench.common.numbers import faster

    assert faster(2.7) == "2.7x faster" and faster(0.1) == "10.0x slower" and faster(1.0) == "1.0x faster"


def test_the_readme_evaluator_claim_is_what_bench_perf_eval_measures_by_default():
    """README: `bench perf eval` ... on 69 frames; with the old default of 20 frames the command printed
    other ratios than those beside it (process start-up dominates a short run)."""
    import re

    from bench.common.paths import README
    from bench.perf.evaluation.evaluator import DEFAULT_FRAMES

    text = README.read_text()
    assert "`bench perf eval`" in text
    for frames in re.findall(r"bench perf eval[^`]*--n (\d+)", text):
        assert int(frames) == DEFAULT_FRAMES
    assert f"{DEFAULT_FRAMES} generated" in text
