"""`make gpu-check`'s script: mmsegmentation's fps convention, the report it writes, and its plumbing end to
end on the CPU (`--dry-run`); no test needs a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common.paths import PROJECT_ROOT
from bench.perf import gpu_check


def test_the_report_table_puts_ours_beside_the_published_figure():
    report = {
        "settings": {"model": "pspnet", "preset": None, "size": [1024, 2048], "dry_run": False},
        "environment": {
            "device": "GPU: 1x NVIDIA H100",
            "tensorflow": "2.21.0",
            "cuda": "12.5",
            "cudnn": "9",
        },
        "convention": "batch 1, ...",
        "published": gpu_check.PUBLISHED,
        "inference": {
            m: {"fps": 10.0, "p50_ms": 99.0, "p90_ms": 101.0, "peak_memory_mb": 2048} for m in gpu_check.MODES
        },
        "training": {"precision": "bf16+xla", "batch": 8, "crop": [512, 1024], "images_per_s": 30.0},
        "scaling": {
            "replicas": 2,
            "batch_per_replica": 8,
            "images_per_s": 57.0,
            "efficiency": 0.95,
            "note": "n",
        },
        "seconds": 200.0,
    }
    text = gpu_check.markdown(report)
    assert text.startswith("PSPNet-R50-D8 at 1024x2048")
    assert "| ours | GPU: 1x NVIDIA H100 | bf16+xla | 10.00 | 99.0 | 101.0 | 2048 |" in text
    assert "| mmsegmentation (published) | NVIDIA Tesla V100 | fp32 | 4.07 |" in text
    assert "Mirrored over 2 replicas (8 images each): 57.00 images/s, 95% scaling efficiency" in text


@pytest.mark.slow
def test_dry_run_measures_every_figure_on_the_cpu_and_writes_json_and_markdown(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "bench.perf.gpu_check", "--dry-run", "--model", "tests.tiny_model:tiny"]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(Path(f"{out}.json").read_text())
    assert set(report["inference"]) == set(gpu_check.MODES)
    for figures in report["inference"].values():
        assert figures["fps"] > 0 and 0 < figures["p50_ms"] <= figures["p90_ms"]
        assert figures["timed_calls"] == gpu_check.DRY_RUN.iterations - gpu_check.WARMUP
        assert figures["peak_memory_mb"] > 0
    assert report["training"]["images_per_s"] > 0 and report["training"]["batch"] == 2
    assert report["scaling"]["replicas"] == 2 and report["scaling"]["efficiency"] > 0
    assert report["settings"]["dry_run"] is True and report["environment"]["device"].startswith("CPU")
    loop = report["loop"]
    assert loop["rates"]["forward pass (bare)"] > 0 and loop["ratios"]["loop, sinks: evaluation"] > 0
    assert {"decode + normalise", "forward", "sink: calibration"} <= set(loop["stages_ms"])
    backends = {r["backend"]: r for r in report["backends"]}
    assert backends["tensorflow fp32"]["argmax_agreement"] == 1.0
    assert backends["tensorflow fp32 + XLA"]["argmax_agreement"] >= 0.999
    assert "onnxruntime-gpu" in backends["onnxruntime cuda"]["note"]  # the CPU build: its row says why
    table = Path(f"{out}.md").read_text()
    assert "dry run, figures mean nothing" in table and "| mmsegmentation (published) |" in table
    assert "| loop, sinks: evaluation |" in table and "| tensorflow fp32 + XLA |" in table
    assert table in done.stdout
