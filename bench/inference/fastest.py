"""`--runtime auto` on `bench run` / `bench predict`: the fastest way this machine runs a checkpoint whose
arg-max agrees with TensorFlow fp32 on at least `MIN_AGREEMENT` of the pixels, from the rows `bench perf
backends CHECKPOINT` wrote on this device (`results/backends.csv`). The opened model's metadata says which
backend it took (`runtime`, and `runtime_choice` with the figures it was chosen on)."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.common.paths import RESULTS_DIR
from data.errors import UserError

BACKENDS_CSV = RESULTS_DIR / "backends.csv"
MIN_AGREEMENT = 0.999
GRAPH_RUNTIMES = {
    "onnxruntime cpu": ("onnxruntime", None),
    "openvino cpu": ("openvino", None),
    "onnxruntime cuda": ("onnxruntime", ("cuda", "cpu")),
    "onnxruntime tensorrt": ("onnxruntime", ("tensorrt", "cuda", "cpu")),
}
TENSORFLOW = {
    "tensorflow fp32": ("fp32", False),
    "tensorflow bf16": ("bf16", False),
    "tensorflow fp32 + XLA": ("fp32", True),
}


def fastest_row(checkpoint: str, csv_path: str | Path = BACKENDS_CSV) -> dict:
    """The row of the fastest backend of `checkpoint` measured on this device with agreement >= 99.9% that
    `open_fastest` can open again (TensorFlow in any precision or with XLA; a graph runtime with its file)."""
    from bench.common.device import device_label

    csv_path = Path(csv_path)
    how = f"run `python -m bench perf backends {checkpoint}` on this machine first"
    if not csv_path.is_file():
        raise UserError(f"--runtime auto picks from {csv_path}, which does not exist: {how}")
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    device, wanted = device_label(), _same(checkpoint)
    mine = [r for r in rows if _same(r.get("checkpoint", "")) == wanted and r.get("device") == device]
    usable = [
        r
        for r in mine
        if r.get("images_per_s")
        and float(r.get("argmax_agreement") or 0) >= MIN_AGREEMENT
        and (r["backend"] in TENSORFLOW or (r["backend"] in GRAPH_RUNTIMES and r.get("graph")))
    ]
    if not usable:
        found = (
            f"{len(mine)} rows of it on {device}, none with agreement >= {100 * MIN_AGREEMENT:g}%"
            if mine
            else f"no row of {checkpoint} measured on {device}"
        )
        raise UserError(f"--runtime auto: {csv_path} has {found}: {how}")
    return max(usable, key=lambda r: float(r["images_per_s"]))


def open_fastest(checkpoint: str, *, fold_bn: bool = True, cache=None, csv_path: str | Path = BACKENDS_CSV):
    """`checkpoint` opened the way `fastest_row` names, its choice in the metadata."""
    from bench.sources.opened import SourceOptions
    from bench.sources.opener import open_checkpoint

    row = fastest_row(checkpoint, csv_path)
    name = row["backend"]
    if name in TENSORFLOW:
        precision, xla = TENSORFLOW[name]
        opened = open_checkpoint(checkpoint, precision=precision, fold_bn=fold_bn, cache=cache)
        opened.jit = xla
        if xla:
            opened.metadata["runtime"] = "tensorflow+xla"
    else:
        runtime, providers = GRAPH_RUNTIMES[name]
        options = SourceOptions(runtime=runtime, providers=providers, recipe=row.get("recipe") or None)
        opened = open_checkpoint(row["graph"], options=options)
    opened.metadata["runtime_choice"] = (
        f"auto: {name}, {float(row['images_per_s']):.2f} images/s, arg-max agreement "
        f"{100 * float(row['argmax_agreement']):.3f}% ({Path(csv_path).name})"
    )
    return opened


def open_model(checkpoint: str, *, precision: str, fold_bn: bool, options=None, cache=None):
    """`open_checkpoint`, or `open_fastest` when `options.runtime` is "auto" (which takes no other option)."""
    from bench.sources.opener import open_checkpoint

    if options is None or options.runtime != "auto":
        return open_checkpoint(checkpoint, precision=precision, fold_bn=fold_bn, cache=cache, options=options)
    others = [flag for flag in options.given() if flag != "--runtime"]
    if others or precision != "fp32":
        given = " ".join(others + ([f"--precision {precision}"] if precision != "fp32" else []))
        raise UserError(f"--runtime auto picks the runtime and precision itself: drop {given}")
    return open_fastest(checkpoint, fold_bn=fold_bn, cache=cache)


def _same(path: str) -> str:
    return str(Path(path).resolve()) if path else ""


def open_from_arguments(args, settings):
    """The model a command line names, as `bench predict` and `bench submit` open it: `--checkpoint` (a
    published weights name looked up in `--weights-dir`), the graph-runtime options, `--runtime auto`."""
    from bench.arguments import source_options
    from bench.sources.download import checkpoint_or_weights

    checkpoint = checkpoint_or_weights(args.checkpoint, args.weights_dir)
    return open_model(
        checkpoint, precision=settings.precision, fold_bn=settings.fold_bn, options=source_options(args)
    )
