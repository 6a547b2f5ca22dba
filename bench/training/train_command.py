"""`python -m bench train`: the command line of `bench.training.train.train` (a recipe, overridden by flags,
and the run's options)."""

from __future__ import annotations

import argparse
import dataclasses

from bench.arguments import FRAME_COUNT as VAL_LIMIT
from bench.arguments import size
from bench.sources import keras_checkpoint as ckpt
from bench.training import recipes
from bench.training.cluster import STRATEGIES
from data.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        default=None,
        metavar="NAME",
        help="named recipe (see `bench recipes`), e.g. mmseg-80k; the flags below override its settings",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="registry name (see `bench models`) or pkg.mod:func (default: the recipe's)",
    )
    parser.add_argument("--preset", default=None, help="named option set of the model, e.g. cpu")
    parser.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option (repeatable), e.g. --model-opt depth=101",
    )
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument(
        "--steps", type=int, default=None, help="total optimizer steps to reach (or the recipe's)"
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="global batch: images per step over all replicas (8)"
    )
    parser.add_argument("--crop", type=size, default=None, help="training crop HxW (default 512x512)")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default 0.01)")
    parser.add_argument("--weight-decay", type=float, default=None, help="default 1e-4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="K",
        help="save a checkpoint every K steps (and always at the end and on Ctrl-C; default 500)",
    )
    parser.add_argument("--log-every", type=int, default=10, metavar="K", help="CSV/TensorBoard row every K")
    parser.add_argument(
        "--val-every",
        type=int,
        default=None,
        metavar="K",
        help="score the val split every K steps and at the end (val_log.csv, val_miou.png, "
        "best.keras); 0: never",
    )
    parser.add_argument(
        "--val-limit",
        type=VAL_LIMIT,
        default=None,
        metavar="N",
        help=f"validate on the first N frames only (with --val-every; {VAL_LIMIT})",
    )
    parser.add_argument("--out", required=True, help="training folder for checkpoints and logs")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--float32", action="store_true", help="no mixed precision or XLA even on a GPU")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="tf.distribute strategy: multiworker when TF_CONFIG is set, mirrored with 2+ GPUs, else default",
    )
    parser.add_argument(
        "--cpu-replicas",
        type=int,
        default=None,
        metavar="N",
        help="mirror over N logical CPU devices (tests and benchmarks of the distributed path without GPUs)",
    )
    parser.add_argument(
        "--worker-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="multiworker: give up (exit 2) when the other workers of TF_CONFIG have not all joined after "
        "this long (default 300)",
    )


def _recorded_recipe(out: str) -> str | None:
    """The recipe named by the latest checkpoint of a training folder (for `--resume` without `--recipe`)."""
    existing = ckpt.list_checkpoints(out)
    return ckpt.read_metadata(existing[-1]).get("recipe") if existing else None


def resolve_recipe(args: argparse.Namespace) -> recipes.Recipe:
    """The recipe the command line asks for: `--recipe` (or, on --resume, the run's own) overridden by
    the flags given."""
    name = args.recipe or (_recorded_recipe(args.out) if args.resume else None)
    base = recipes.get(name) if name else recipes.CLI_DEFAULTS
    recipe = recipes.with_overrides(
        base,
        model=args.model,
        preset=args.preset,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        weight_decay=args.weight_decay,
        checkpoint_every=args.checkpoint_every,
        val_every=args.val_every,
    )
    if not recipe.model:
        raise UserError("give --model (a registry name, see `bench models`) or a --recipe that names one")
    if args.steps is None and base is recipes.CLI_DEFAULTS:
        raise UserError("give --steps (the total number of optimizer steps) or a --recipe")
    return recipe


def run(args: argparse.Namespace) -> int:
    from bench.training.train import RunOptions, train
    from models.registry import parse_option

    recipe = resolve_recipe(args)
    if args.val_limit is not None and not recipe.val_every:
        raise UserError(
            f"--val-limit {args.val_limit} limits the validation of --val-every, which is off for this run: "
            f"add --val-every K (validate every K steps) or drop --val-limit"
        )
    options = dict(parse_option(o) for o in args.model_opt)
    recipe = dataclasses.replace(recipe, options=options or recipe.options, seed=args.seed)
    options_of_run = RunOptions(
        resume=args.resume,
        strategy=args.strategy,
        cpu_replicas=args.cpu_replicas,
        accelerate=False if args.float32 else None,
        log_every=args.log_every,
        val_limit=args.val_limit,
        progress=not args.no_progress,
        worker_timeout=args.worker_timeout,
    )
    train(recipe, args.dataset, args.out, run=options_of_run)
    return 0
