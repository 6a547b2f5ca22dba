"""`python -m bench run`: the whole benchmark in one reproducible command (what `make bench` calls).

dataset (given, `$CITYSCAPES_DATASET`, else the embedded synthetic set, generated once) -> checkpoint
(given, else the model's CPU preset trained once and cached under `checkpoints/`) -> predictions ->
evaluation -> result row, run folder with plots, comparison with the reference table, README section.
Every cached step resumes where it stopped: an interrupted training run continues from its last checkpoint.
Predictions belong to the run: they go to `predictions/` in its own folder under `results/runs/`, never
beside the checkpoint (which may be read-only, or shared by other runs); a run that fails leaves no folder.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from bench.arguments import (
    add_dataset_format_argument,
    add_gt_cache_arguments,
    add_inference_arguments,
    add_weights_dir_argument,
    dataset_format,
    gt_cache_from_arguments,
    inference_settings,
    source_options,
)
from bench.arguments import seeds as seeds_argument
from bench.common.atomic import check_writable
from bench.common.datasets import resolve_dataset
from bench.common.numbers import count
from bench.common.paths import CHECKPOINT_ROOT, PROJECT_ROOT, README, RESULTS_CSV, RUNS_DIR
from bench.common.ranges import SEED
from bench.evaluation.gt_cache import AUTO
from bench.evaluation.sinks import DEFAULT_QUALITY, QualitySettings, add_quality_arguments, quality_settings
from bench.training.default_checkpoint import default_preset, ensure_checkpoint, plan_line
from bench.training.recipes import Recipe, default_recipe
from bench.training.recipes import label as recipe_label
from data.errors import UserError
from models.inference_modes import DEFAULT_SETTINGS, InferenceSettings

NOTES = "trained from scratch (no ImageNet weights offline)"
NO_README_TAG = "no-readme"  # a row of `bench run --no-readme`: kept in results.csv, never in the README
DEFAULT_MODEL = "pspnet"


def run_benchmark(
    model: str | None,
    *,
    dataset: str | None = None,
    split: str = "val",
    checkpoint: str | None = None,
    settings: InferenceSettings = DEFAULT_SETTINGS,
    preset: str | None = None,
    recipe: Recipe | None = None,
    steps: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    write_predictions: bool = False,
    reference: str | None = None,
    readme: Path | None = README,
    results_csv: Path | None = None,
    runs_dir: Path | None = None,
    checkpoint_root: Path = CHECKPOINT_ROOT,
    progress: bool = True,
    quality: QualitySettings = DEFAULT_QUALITY,
    gt_cache=AUTO,
    graph_options=None,
    tags: str = "",
):
    """Run the benchmark; returns the `RunReport` of `bench.report.run_folder` (row, run folder, files).

    Frames are scored from the arrays just predicted (bench/evaluation/streaming.py), never re-read from
    PNGs; PNGs are written for the frames of the run folder's sample plot, or for all frames with
    `write_predictions`. `workers`: scoring threads beside the model (default one). `settings`: how the
    model predicts (mode, scales, flip, crop, stride, precision, BatchNorm folding). `quality`: the
    Boundary IoU and calibration sinks beside the evaluator (bench/evaluation/sinks.py). `gt_cache`: where
    the decoded ground truth is kept between runs (bench/evaluation/gt_cache.py; None: decoded every
    time). `model` None: the one the checkpoint names (a LiteRT file names itself), else pspnet."""
    from bench.common.tensorflow_import import import_tensorflow
    from bench.evaluation.command import format_calibration
    from bench.evaluation.sinks import with_quality
    from bench.evaluation.streaming import StreamingEvaluator
    from bench.inference.fastest import open_model
    from bench.inference.predict import write_predictions as write
    from bench.report.frame_images import WORST_N
    from bench.report.identity import dataset_identity
    from bench.report.results import check_results_file
    from bench.report.run_folder import N_SAMPLES, new_run_dir, report_run
    from bench.sources.convert.published import reference_for
    from bench.sources.opener import open_checkpoint
    from bench.sources.weights import of_metadata as published_weights
    from bench.sources.weights import published as published_rows
    from bench.sources.weights import reference_id
    from data.cityscapes import list_samples
    from models import registry

    began = time.perf_counter()
    if model is not None or checkpoint is None:
        plan = plan_line(
            model or DEFAULT_MODEL,
            dataset,
            checkpoint,
            split,
            seed=seed,
            steps=steps,
            preset=preset,
            root=checkpoint_root,
        )
        print(plan)
    import_tensorflow(training=checkpoint is None)  # first: start-up lines filtered, oneDNN set for training
    if model is None and not checkpoint:
        model = DEFAULT_MODEL
    if model is not None:
        registry.get(model)  # an unknown model or bad plugin path fails before any work
    if steps is not None and steps < 1:
        raise UserError(f"--steps {steps} must be at least 1")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers} must be at least 1")
    runs_dir = Path(runs_dir) if runs_dir is not None else RUNS_DIR
    check_writable(runs_dir, "run folder root", folder=True)
    check_results_file(results_csv if results_csv is not None else RESULTS_CSV)  # read and written at the end
    cache = Path(checkpoint_root) / "converted"
    opened = None
    if checkpoint:  # opened before the dataset is made: a bad checkpoint fails first
        opened = open_model(
            checkpoint,
            precision=settings.precision,
            fold_bn=settings.fold_bn,
            cache=cache,
            options=graph_options,
        )
    elif graph_options is not None and graph_options.given():
        raise UserError(
            f"{' '.join(graph_options.given())} apply to an exported graph: add --checkpoint FILE"
        )
    data = resolve_dataset(dataset, progress=progress)
    if opened is None:
        preset = preset if preset is not None else default_preset(model)
        recipe = recipe or default_recipe(model, data.kind)
        if steps is not None:
            recipe = dataclasses.replace(recipe, steps=steps)
        trained = ensure_checkpoint(
            model, data, preset=preset, recipe=recipe, seed=seed, root=checkpoint_root, progress=progress
        )
        opened = open_checkpoint(trained, precision=settings.precision, fold_bn=settings.fold_bn)
    checkpoint_path = Path(opened.metadata["checkpoint"])
    meta = {} if opened.metadata.get("plain") else opened.metadata  # what the checkpoint records of itself
    if model is None:
        model = meta.get("model") or DEFAULT_MODEL
    if meta.get("model") and meta["model"] != model:
        raise UserError(
            f"checkpoint {checkpoint_path} holds model '{meta['model']}', not '{model}': "
            f"pass MODEL={meta['model']} or another CHECKPOINT"
        )

    when = datetime.now(timezone.utc)
    run_dir = new_run_dir(model, data.name, root=runs_dir, when=when)
    try:
        pred_dir = run_dir / "predictions"
        samples = list_samples(data.root, split, require_images=True)
        identity = {**dataset_identity(data.name, data.kind, data.root, split, samples), "tags": tags}
        shown = min(N_SAMPLES, len(samples))
        written = "all frames" if write_predictions else f"the {count(shown, 'frame')} of the sample plot"
        print(
            f"predict and evaluate: {split} split ({count(len(samples), 'frame')} of "
            f"{identity['frame_size']}, {identity['scope']}), mode {settings.mode}, "
            f"{opened.metadata.get('precision', settings.precision)}; PNGs of {written}: {pred_dir}"
        )
        with contextlib.ExitStack() as stack:
            evaluator = stack.enter_context(
                StreamingEvaluator(workers=workers or 1, gt_cache=gt_cache, keep_worst=WORST_N)
            )
            scorers = [stack.enter_context(sink) for sink in quality.sinks()]
            predicted = write(
                opened,
                samples,
                pred_dir,
                settings,
                write=True if write_predictions else sample_keys(samples),
                sinks=[evaluator, *scorers],
                split=split,
                progress=progress,
            )
        stats = predicted.stats
        worst_predictions = evaluator.worst_predictions()  # for the report's thumbnails
        result = with_quality(predicted.results[0], predicted.results[1 : 1 + len(scorers)])
        print(
            f"evaluate: mIoU {100 * result.miou:.1f} on {count(result.n_images, 'image')}, scored from the "
            f"predicted arrays ({result.seconds:.1f} s of scoring, overlapped with the model)"
        )
        if result.boundary is not None:
            print(
                f"boundary IoU: {100 * result.boundary.miou:.1f} (d = {result.boundary.ratio:g} x diagonal)"
            )
        if result.calibration is not None:
            print(format_calibration(result.calibration), end="")

        extra = {k: v for k, v in (("results_csv", results_csv),) if v is not None}
        notes = NOTES if not checkpoint else ""
        published_ref = reference_for(meta, mode=settings.mode, flip=settings.flip, scales=settings.scales)
        if published_ref is not None:  # a recognised published checkpoint: its row names what it should score
            entry, extra["reference_id"] = published_ref
            reference = reference or extra["reference_id"]
            notes = f"published checkpoint {entry.file_name}"
        elif (weights := published_weights(meta)) is not None:  # a LiteRT file, a converted ESPNet .pth
            found = reference_id(
                weights, split, mode=settings.mode, flip=settings.flip, scales=settings.scales
            ) or next((r["id"] for r in published_rows(weights)), None)  # another split: compare says so
            if found:
                extra["reference_id"] = found
                reference = reference or found
            notes = f"published weights {weights.name} ({weights.runtime})"
            if isinstance(meta.get("source"), dict):
                notes += f", converted from {meta['source'].get('file')}"
        elif isinstance(meta.get("source"), dict):
            notes = f"converted from {meta['source'].get('file')} ({meta['source'].get('format')})"
        if reference:
            extra["reference"] = reference
        if opened.metadata.get("runtime_choice"):  # --runtime auto: the row says which backend it took
            notes = "; ".join(n for n in (notes, opened.metadata["runtime_choice"]) if n)
        report = report_run(
            result,
            model=model,
            dataset=identity["dataset"],
            dataset_kind=data.kind,
            identity=identity,
            split=split,
            gt_root=data.root,
            pred_dir=pred_dir,
            readme=readme,
            run_dir=run_dir,
            when=when,
            worst_predictions=worst_predictions,
            mode=settings.mode,
            checkpoint=_display_path(checkpoint_path),
            preset=meta.get("preset") or preset,
            options=meta.get("options") or None,
            train_steps=meta.get("steps"),
            recipe=recipe_label(meta),
            predict_stats=stats,
            notes=notes,
            seed=None if checkpoint else seed,  # the seed of the training run
            **extra,
        )
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # no row was written: a half run folder is litter
        raise
    print(report.summary())
    print(f"done in {time.perf_counter() - began:.0f} s")
    return report


def run_seeds(model: str | None, seeds: Sequence[int], **options) -> dict:
    """`run_benchmark` once per seed; with several, one row of their mean and std (bench/report/seeds.py)
    instead of a row per seed. Returns the row written to the results file."""
    if len(seeds) == 1:
        return run_benchmark(model, seed=seeds[0], **options).row
    from bench.report.seeds import sweep

    if options.get("checkpoint"):
        print("note: one checkpoint scores the same with every seed; --seeds varies the training run")
    results_csv = options.pop("results_csv", None) or RESULTS_CSV
    readme = options.pop("readme", README)
    return sweep(
        lambda seed, seeds_csv: (
            run_benchmark(model, seed=seed, results_csv=seeds_csv, readme=None, **options).row
        ),
        seeds,
        model=model or _checkpoint_name(options.get("checkpoint")),
        results_csv=results_csv,
        runs_dir=options.get("runs_dir") or RUNS_DIR,
        readme=readme,
        reference=options.get("reference"),
    )


def _checkpoint_name(checkpoint) -> str:
    """What a sweep of a checkpoint is named by (its file or folder name), never `None`."""
    return Path(os.fspath(checkpoint)).stem if checkpoint else "checkpoint"


def sample_keys(samples) -> list[str]:
    """Frame keys of the run folder's sample plot (the frames `report_run` will show, spread evenly)."""
    from bench.report.run_folder import spread

    return spread([s.key for s in samples])


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help=f"registry name or package.module:function (default: the checkpoint's, else {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="Cityscapes root (default: $CITYSCAPES_DATASET, else the synthetic set); an ACDC, Dark Zurich, "
        "Foggy Cityscapes or BDD100K root with --checkpoint/--weights is scored as `bench generalize` "
        "scores it (a table per condition, no result row)",
    )
    add_dataset_format_argument(parser)
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help=".keras checkpoint, a PyTorch .pth (converted once, cached by content), a LiteRT .tflite, "
        "an .onnx or OpenVINO .xml with its recipe (default: train the model's CPU preset once and cache it)",
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="NAME",
        help="published weights by name (`python -m bench weights` lists them): the file in --weights-dir, "
        "else downloaded there and checked",
    )
    add_weights_dir_argument(parser)
    add_inference_arguments(parser)
    parser.add_argument("--preset", default=None, help="model preset for the default checkpoint")
    parser.add_argument("--steps", type=int, default=None, help="training steps for the default checkpoint")
    parser.add_argument(
        "--seed", type=SEED, default=0, help=f"training seed of the default checkpoint ({SEED})"
    )
    parser.add_argument(
        "--seeds",
        type=seeds_argument,
        default=None,
        help="comma-separated seeds, e.g. 0,1,2: train (or evaluate) once per seed and write one row with "
        "the mean and sample std across them (default: --seed alone, a row that says n=1)",
    )
    parser.add_argument("--workers", type=int, default=None, help="scoring threads (default 1)")
    parser.add_argument(
        "--write-predictions",
        action="store_true",
        help="write every frame's label-ID PNG (default: only the frames of the sample plot)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="reference table or row id to compare with (default: the one a "
        "published checkpoint names, else the seed table)",
    )
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate the README section")
    add_quality_arguments(parser)
    add_gt_cache_arguments(parser)


def run(args: argparse.Namespace) -> int:
    checkpoint = args.checkpoint
    if args.weights_dir and not args.weights:
        raise UserError("--weights-dir is where --weights NAME is looked for: add --weights")
    if args.weights:
        if checkpoint:
            raise UserError("--checkpoint and --weights both name the model: give one of them")
        from bench.sources.download import weights_file
        from bench.sources.weights import get

        checkpoint = str(weights_file(get(args.weights), args.weights_dir))
    root = args.dataset or os.environ.get("CITYSCAPES_DATASET") or None
    if root is None and args.dataset_format not in (None, "cityscapes"):
        raise UserError(
            f"--dataset-format {args.dataset_format} names the layout of --dataset: add --dataset ROOT"
        )
    fmt = dataset_format(args, root) if root is not None else "cityscapes"
    if fmt != "cityscapes":
        return run_generalize(args, checkpoint, fmt, root)
    run_seeds(
        args.model,
        args.seeds or (args.seed,),
        dataset=args.dataset,
        split=args.split,
        checkpoint=checkpoint,
        settings=inference_settings(args),
        preset=args.preset,
        steps=args.steps,
        workers=args.workers,
        write_predictions=args.write_predictions,
        reference=args.reference,
        readme=None if args.no_readme else README,
        tags=NO_README_TAG if args.no_readme else "",
        quality=quality_settings(args),
        gt_cache=gt_cache_from_arguments(args),
        graph_options=source_options(args),
    )
    return 0


def run_generalize(args: argparse.Namespace, checkpoint: str | None, fmt: str, root: str) -> int:
    """`bench run` on an ACDC, Dark Zurich, Foggy Cityscapes or BDD100K root: the checkpoint scored per
    condition by `bench generalize` (its resumable folder, table and plot); a result row, training and the
    Cityscapes run folder's figures belong to Cityscapes splits: the options that ask for them are refused."""
    from bench.generalize import command

    if not checkpoint:
        raise UserError(
            f"{root} is laid out as {fmt}: `bench run` trains on Cityscapes layouts only; give the model to "
            f"score with --checkpoint FILE or --weights NAME"
        )
    given = {
        "--seeds": args.seeds is not None,
        "--write-predictions": args.write_predictions,
        "--reference": args.reference is not None,
        "--preset": args.preset is not None,
        "--steps": args.steps is not None,
        "--temperature": args.temperature is not None,
    }
    refused = [name for name, on in given.items() if on]
    if refused:
        raise UserError(
            f"{', '.join(refused)} apply to a Cityscapes run; {root} is laid out as {fmt}, scored as `bench "
            f"generalize` scores it: leave out {', '.join(refused)}"
        )
    print(
        f"note: {root} is laid out as {fmt}: scored per condition as `bench generalize CHECKPOINT --datasets "
        f"{fmt}=ROOT` scores it (table, CSV and plot in its sweep folder; no result row)"
    )
    generalize = argparse.Namespace(**vars(args))
    generalize.checkpoint = checkpoint
    generalize.datasets = f"{fmt}={root}"
    generalize.limit = None
    generalize.out = None
    generalize.readme = None
    generalize.no_progress = False
    return command.run(generalize)
