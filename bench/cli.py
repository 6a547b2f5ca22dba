"""`python -m bench COMMAND ...`: one entry point, each command in its own module.

A command module defines `add_arguments(parser)` and `run(args) -> int`. Modules are imported only for the
command being run, so `evaluate` and `compare` never pay for TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from data.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bench.run", "end to end: dataset, checkpoint, predict, evaluate, results, README"),
    "evaluate": (
        "bench.report.evaluate_command",
        "score prediction PNGs against Cityscapes ground truth (--row NAME: record them as a result row)",
    ),
    "report": ("bench.report.report_command", "rebuild a run folder's report.html (and results/index.html)"),
    "results": ("bench.report.results_command", "result rows by name: list, tag, untag, remove"),
    "cache": ("bench.evaluation.cache_command", "the ground-truth cache of evaluations: info, clear"),
    "models": ("bench.sources.models_listing", "list the model registry with options and parameter counts"),
    "train": ("bench.training.train_command", "train a registry model on a Cityscapes-format dataset"),
    "weights": ("bench.sources.weights_listing", "list the published weights: URL, sha256, licence, mIoU"),
    "recipes": (
        "bench.training.recipes",
        "list the named training recipes and the results they should reach",
    ),
    "predict": ("bench.inference.predict", "write prediction PNGs (label IDs) from a checkpoint"),
    "convert": (
        "bench.sources.convert.command",
        "convert a published PyTorch checkpoint (mmseg PSPNet, ESPNet, ESPNetv2)",
    ),
    "export": (
        "bench.export.command",
        "write a checkpoint as ONNX, OpenVINO IR or LiteRT (fp32/fp16/int8), checked against it",
    ),
    "agree": (
        "bench.agree.command",
        "the same frames through two models or runtimes: agreement, delta logits, mIoU, images/s",
    ),
    "zoo": (
        "bench.agree.zoo",
        "the README's model zoo: every shared real model per runtime, params, agreement with its authors",
    ),
    "submit": ("bench.submission.command", "write or check a Cityscapes test-server submission zip"),
    "compare": ("bench.report.compare", "our result rows side by side with a published reference table"),
    "readme": ("bench.report.readme", "regenerate the README results section from results/results.csv"),
    "perf": ("bench.perf.command", "speed benchmarks: evaluator, model forward, input pipeline"),
    "robustness": (
        "bench.robustness.command",
        "Cityscapes-C: mIoU under corruptions x severities, mPC, rPC",
    ),
    "generalize": (
        "bench.generalize.command",
        "ACDC, Dark Zurich, Foggy Cityscapes, BDD100K beside Cityscapes val: one row per condition",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="cityscapes-bench: Cityscapes segmentation benchmark harness"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv else None
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(cmd)
            cmd.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:  # its message, when a command gives one, says what was kept
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
