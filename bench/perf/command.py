"""`python -m bench perf TARGET`: speed benchmarks that print measured figures and ratios.

Each target lives in its own module (`bench/perf/<target>.py`) with `add_arguments` and `run`; the
modules import their heavy dependencies (TensorFlow, cityscapesScripts) inside `run`, so building the
parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib

TARGETS = {
    "eval": (
        "bench.perf.evaluation.evaluator",
        "evaluator vs cityscapesScripts vs PNG decoding on full-size frames",
    ),
    "model": ("bench.perf.model.forward", "forward images/s and GFLOP/s of a model vs a float32 matmul"),
    "pipeline": ("bench.perf.inputs.pipeline", "input pipeline images/s vs one training step"),
    "train": (
        "bench.perf.training.steps",
        "training images/s with 1 and N data-parallel replicas, scaling efficiency",
    ),
    "precision": (
        "bench.perf.model.precision",
        "bf16 vs fp32 on a checkpoint: arg-max agreement, mIoU, speed",
    ),
    "metrics": (
        "bench.perf.evaluation.metrics",
        "cost of calibration and Boundary IoU per frame vs a prediction pass",
    ),
    "loop": (
        "bench.perf.inference.loop",
        "prediction loop images/s vs the bare forward pass, per sink set, and each stage's share",
    ),
    "backends": (
        "bench.perf.inference.backends",
        "one checkpoint every way this machine runs it: images/s, CPU s, memory, agreement with TF fp32",
    ),
    "report": ("bench.perf.reporting.report", "seconds to write a run's report.html for N frames (500)"),
    "corruptions": (
        "bench.perf.inputs.corruptions",
        "seconds per frame of each Cityscapes-C corruption (this CPU)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module, help_text) in TARGETS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(_perf_module=module)
        importlib.import_module(module).add_arguments(cmd)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(args._perf_module).run(args)
