"""The prediction loop's sections of `make gpu-check` (bench/perf/gpu_check.py): loop vs the bare forward
pass at full resolution per sink set, and the backends table, both on the machine's accelerator; random
weights (speed does not depend on them; agreement between backends is still measured on their outputs)."""

from __future__ import annotations

import tempfile
from pathlib import Path

LOOP_SINK_SETS = ("none", "evaluation", "boundary")
GPU_BACKENDS = (
    "tensorflow fp32",
    "tensorflow bf16",
    "tensorflow fp32 + XLA",
    "onnxruntime cuda",
    "onnxruntime tensorrt",
)
"""What runs on a GPU machine (LiteRT and OpenVINO run on its CPU: not what the check is for)."""


def _samples(size: tuple[int, int], n: int) -> list:
    import argparse

    from bench.perf.inference.setup import frames

    return frames(argparse.Namespace(dataset=None, size=size, limit=n))


def loop_section(model: str, preset: str | None, size: tuple[int, int], *, frames: int, repeats: int) -> dict:
    """{"rates": {contender: images/s}, "ratios": {contender: x forward}, "stages": {stage: ms/frame}}."""
    from bench.perf.inference.loop import measure_loop
    from bench.perf.inference.setup import registry_model

    figures = measure_loop(
        registry_model(model, preset), _samples(size, frames), LOOP_SINK_SETS, batch=1, repeats=repeats
    )
    base = figures["rates"]["forward pass (bare)"]
    return {
        "frames": frames,
        "rates": figures["rates"],
        "ratios": {name: rate / base for name, rate in figures["rates"].items()},
        "stages_ms": {name: 1e3 * s for name, s in figures["stages"].items()},
        "stages_cpu_ms": {name: 1e3 * s for name, s in figures["stage_cpu"].items()},
    }


def backends_section(
    model: str, preset: str | None, size: tuple[int, int], *, frames: int, repeats: int
) -> list:
    """The rows of `bench perf backends` for a random-weights checkpoint of the model."""
    from bench.perf.inference.backends import measure_backends
    from bench.perf.inference.backends_list import BACKENDS
    from bench.sources import keras_checkpoint
    from models import registry

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.keras"
        keras_checkpoint.save(
            registry.build(model, preset=preset, aux_head=False),
            path,
            {"model": model, "preset": preset, "aux_head": False},
        )
        chosen = [b for b in BACKENDS if b.name in GPU_BACKENDS]
        rows = measure_backends(
            str(path), _samples(size, frames), size, repeats=repeats, scored=False, backends=chosen
        )
    for row in rows:
        row["checkpoint"] = f"{model}{':' + preset if preset else ''} (random weights)"
    return rows


def markdown(report: dict) -> list[str]:
    """README-ready lines of the two sections (empty when the report has neither)."""
    lines: list[str] = []
    loop = report.get("loop")
    if loop:
        lines += [
            "",
            f"Prediction loop vs the bare forward pass ({loop['frames']} frames, in turns):",
            "",
            "| contender | images/s | x forward |",
            "|---|---:|---:|",
        ]
        lines += [f"| {n} | {r:.2f} | {loop['ratios'][n]:.2f} |" for n, r in loop["rates"].items()]
        stages = ", ".join(f"{n} {ms:.1f}" for n, ms in loop["stages_ms"].items())
        lines += ["", f"Stages alone, ms a frame: {stages}."]
    rows = report.get("backends")
    if rows:
        lines += [
            "",
            "| backend | images/s | CPU s/frame | peak MB | agreement |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            if "images_per_s" in r:
                lines.append(
                    f"| {r['backend']} | {r['images_per_s']:.2f} | {r['cpu_s_per_frame']:.3f} | "
                    f"{r['peak_memory_mb']:.0f} | {100 * r['argmax_agreement']:.3f}% |"
                )
            else:
                lines.append(f"| {r['backend']} | not run: {r['note']} | | | |")
    return lines
