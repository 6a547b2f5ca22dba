"""`python -m bench robustness`: the Cityscapes-C benchmark of a checkpoint (mIoU per corruption x severity,
mPC, rPC), resumable, spread over local replicas and `TF_CONFIG` workers.

OUT (default `results/runs/robustness-{sweep}`, named by the sweep's manifest digest, so running the same
command again resumes it) holds the manifest, one file per finished unit, and at the end `robustness.md`,
`robustness.png` (heat map), `summary.json` and `frames.csv` (each unit's per-frame scores, equal for a
resumed sweep and an uninterrupted one); rows go to the robustness CSV (`--csv`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.errors import UserError

DEFAULT_CSV = "results/robustness.csv"


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _names(text: str) -> tuple[str, ...]:
    """An empty list is refused: it used to mean "every corruption", the full 45-unit sweep."""
    names = _split(text)
    if not names:
        raise argparse.ArgumentTypeError(
            f"'{text}' names no corruption: give a comma-separated list, e.g. gaussian_noise,fog (or leave "
            f"out --corruptions for all of them)"
        )
    return names


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(p) for p in _split(text))
    except ValueError:
        levels = ()
    if not levels:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of severities, e.g. 1,3,5")
    return levels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.arguments import add_gt_cache_arguments, add_inference_arguments
    from bench.robustness.plan import PRESETS
    from data.corruptions import CORRUPTIONS

    parser.add_argument(
        "--checkpoint",
        required=True,
        help=".keras checkpoint, training folder, .pth, .tflite, .onnx or OpenVINO .xml",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="Cityscapes root (default: $CITYSCAPES_DATASET, else the synthetic set)",
    )
    parser.add_argument("--split", default="val", help="split to corrupt (default val)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="full",
        help="; ".join(f"{k}: {p.help}" for k, p in PRESETS.items()) + " (default full)",
    )
    parser.add_argument(
        "--corruptions",
        type=_names,
        default=None,
        help=f"comma-separated subset of: {', '.join(CORRUPTIONS)}",
    )
    parser.add_argument(
        "--severities", type=_levels, default=None, help="comma-separated severities (default: the preset's)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N frames (default: the preset's)"
    )
    parser.add_argument("--out", default=None, help="sweep folder (default results/runs/robustness-{sweep})")
    parser.add_argument(
        "--csv", default=DEFAULT_CSV, help=f"robustness CSV to append to (default {DEFAULT_CSV})"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed of the corruptions (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="corruption processes (default: the cores)")
    parser.add_argument(
        "--save-corrupted",
        default=None,
        metavar="DIR",
        help="also write the corrupted frames as PNGs under DIR",
    )
    parser.add_argument(
        "--cpu-replicas",
        type=int,
        default=None,
        help="mirror over N logical CPU devices (tests, CPU machines)",
    )
    add_inference_arguments(parser)
    add_gt_cache_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from(args: argparse.Namespace):
    from bench.arguments import gt_cache_from_arguments, inference_settings
    from bench.robustness.plan import PRESETS
    from bench.robustness.sweep import SweepSettings

    preset = PRESETS[args.preset]
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be a non-negative integer")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers} must be at least 1")
    if args.cpu_replicas is not None and args.cpu_replicas < 1:
        raise UserError(f"--cpu-replicas {args.cpu_replicas} must be at least 1")
    return SweepSettings(
        split=args.split,
        corruptions=args.corruptions,
        severities=args.severities or preset.severities,
        limit=args.limit if args.limit is not None else preset.limit,
        seed=args.seed,
        workers=args.workers,
        save_corrupted=args.save_corrupted,
        cpu_replicas=args.cpu_replicas,
        inference=inference_settings(args),
        progress=not args.no_progress,
        gt_cache=gt_cache_from_arguments(args),
    )


def run(args: argparse.Namespace) -> int:
    from bench.common.datasets import resolve_dataset
    from bench.common.paths import PROJECT_ROOT
    from bench.report.results import git_commit
    from bench.robustness import report
    from bench.robustness.replicas import ReplicaModel
    from bench.robustness.sweep import cluster_place, load_results, prepare, run_sweep

    settings = settings_from(args)
    place = cluster_place()
    if place.is_chief:
        report.check_csv(args.csv)
    dataset = resolve_dataset(args.dataset, progress=settings.progress)
    from bench.arguments import source_options

    model = ReplicaModel(
        args.checkpoint, settings.inference, cpu_replicas=settings.cpu_replicas, options=source_options(args)
    )
    sweep = prepare(model, dataset, args.out, settings)
    out, folder = sweep.folder.out, sweep.folder
    print(f"sweep folder {out}: {len(sweep.units)} units x {len(sweep.samples)} frames", flush=True)
    figures = run_sweep(model, sweep, settings, place)
    print(
        f"{figures['units']} unit(s), {figures['frames']} frames in {figures['seconds']:.1f} s "
        f"({figures['frames_per_s'] or 0:.2f} frames/s, {figures['waiting_s']:.1f} s waiting for corrupted "
        f"frames; {figures['strategy']} strategy, "
        f"{figures['replicas']} replica(s), {figures['workers']} corruption process(es), {figures['device']})"
    )
    if not place.is_chief:
        print(f"worker {place.index} done: every unit is in {out}; the chief writes the report")
        return 0
    checkpoint = Path(model.metadata.get("checkpoint") or args.checkpoint)
    manifest = folder.manifest
    run_info = {
        "sweep": folder.digest[:16],
        "model": model.metadata.get("model") or "",
        "checkpoint": _relative(checkpoint, PROJECT_ROOT),
        "checkpoint_sha256": manifest["checkpoint_sha256"],
        "dataset": dataset.name,
        "dataset_kind": dataset.kind,
        "split": settings.split,
        "protocol": manifest["protocol"],
        "corruption_package": manifest["corruption_package"],
        "seed": settings.seed,
        **settings.identity(),
        "device": figures["device"],
        "runtime": model.opened.runtime,  # summary.json only: the CSV keeps its columns
        "frames_per_s": figures["frames_per_s"],
        "commit": git_commit(),
    }
    title = f"Cityscapes-C, {run_info['model'] or checkpoint.name} on {dataset.name}"
    title += f" ({len(sweep.samples)} frames)"
    results = load_results(sweep)
    table, appended, count = report.publish(results, out, args.csv, title=title, run_info=run_info)
    print(table, end="")
    print(
        f"wrote {out}/robustness.md, robustness.png, summary.json, frames.csv; "
        + (f"appended {count} rows to {args.csv}" if appended else f"{args.csv} already holds this sweep")
    )
    for unit, result in results.items():
        for warning in result.warnings:
            print(f"WARNING ({unit.name}): {warning}", file=sys.stderr)
    return 0


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)
