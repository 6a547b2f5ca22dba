"""`python -m bench perf TARGET`: speed benchmarks that print measured figures and ratios.

Each target lives in its own module (`bench/perf_<target>.py`) with `add_arguments` and `run`; only the
chosen target's module is imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys

TARGETS = {
    "eval": ("bench.perf_eval", "evaluator vs cityscapesScripts vs PNG decoding on full-size frames"),
    "model": ("bench.perf_model", "forward images/s and GFLOP/s of a model vs a float32 matmul"),
    "pipeline": ("bench.perf_pipeline", "input pipeline images/s vs one training step"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    argv = sys.argv[1:]
    chosen = argv[argv.index("perf") + 1] if "perf" in argv[:-1] else None
    for name, (module, help_text) in TARGETS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            cmd.set_defaults(_perf_module=module)
            importlib.import_module(module).add_arguments(cmd)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(args._perf_module).run(args)
