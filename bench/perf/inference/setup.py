"""What `bench perf loop` and `bench perf backends` run on: a model (a checkpoint, or a registry model with
random weights: speed does not depend on them) and frames with ground truth (a dataset's val split, or
synthetic frames of the size asked, generated once per size under the system's temporary folder)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.arguments import size
from data.errors import UserError


def add_model_arguments(parser: argparse.ArgumentParser, *, checkpoint_required: bool = False) -> None:
    if checkpoint_required:
        parser.add_argument(
            "checkpoint", help="the model: a .keras checkpoint, training folder, .pth, .tflite"
        )
    else:
        parser.add_argument(
            "--checkpoint", default=None, help="the model (default: --model/--preset with random weights)"
        )
        parser.add_argument("--model", default="pspnet", help="registry model without --checkpoint (pspnet)")
        parser.add_argument("--preset", default="cpu", help="its preset (cpu)")
    parser.add_argument("--size", type=size, default=(256, 512), help="HxW of the frames (256x512)")
    parser.add_argument(
        "--dataset", default=None, help="a Cityscapes-format root: its val frames (of any size)"
    )
    parser.add_argument("--limit", type=int, default=8, help="frames (8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each contender, in turns (3)")


def check_counts(args: argparse.Namespace) -> None:
    for name in ("limit", "repeats"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)}: give 1 or more")


def registry_model(name: str, preset: str | None):
    """An `OpenedModel` of a registry model with its random initial weights, BatchNorm folded as the loop
    runs checkpoints."""
    from bench.sources.opener import OpenedModel
    from models import registry
    from models.batchnorm_folding import fold_batchnorm

    preset = None if preset in (None, "none") else preset
    keras = fold_batchnorm(registry.build(name, preset=preset))
    return OpenedModel(keras, {"model": name, "preset": preset, "checkpoint": None, "folded_bn": True})


def open_model(args: argparse.Namespace, **options):
    """The model the arguments name (`options`: `open_checkpoint`'s precision, fold_bn)."""
    if getattr(args, "checkpoint", None):
        from bench.sources.opener import open_checkpoint

        return open_checkpoint(args.checkpoint, **{"fold_bn": True, **options})
    return registry_model(args.model, args.preset)


def model_name(opened) -> str:
    meta = opened.metadata
    if meta.get("checkpoint"):
        return str(meta["checkpoint"])
    preset = f":{meta['preset']}" if meta.get("preset") else ""
    return f"{meta.get('model')}{preset} (random weights)"


def frames(args: argparse.Namespace) -> list:
    """`--limit` val samples: of `--dataset`, else synthetic ones of `--size`."""
    from data.cityscapes import list_samples

    if args.dataset:
        from data.cityscapes import resolve_root

        samples = list_samples(resolve_root(args.dataset), "val", require_images=True)
        if not samples:
            raise UserError(f"--dataset {args.dataset} has no val frames with images")
        return samples[: args.limit]
    from data.synthetic import generate

    h, w = args.size
    root = Path(tempfile.gettempdir()) / "cityscapes-bench-perf" / f"{h}x{w}-{args.limit}"
    generate(root, train=0, val=args.limit, test=0, size=(h, w), seed=0)
    return list_samples(root, "val", require_images=True)
