"""`python -m bench perf pipeline`: is the input pipeline fast enough to keep the model busy?

Three figures in images/s, same batch and crop as training:
1. the pipeline alone (decode, augment, batch; nothing else running);
2. training steps on one batch held in memory (the model's own speed, no input work);
3. training steps fed by the pipeline, as `bench train` runs them.
The pipeline is not the bottleneck when (1) is well above (2) and (3) is close to (2): on a CPU both share
the same cores, so (3) also shows what the pipeline's work costs the model.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.arguments import size

    parser.add_argument(
        "--dataset",
        default=None,
        help="Cityscapes root (default: $CITYSCAPES_DATASET, else data/generated/synthetic)",
    )
    parser.add_argument("--model", default="pspnet", help="registry name or package.module:function")
    parser.add_argument("--preset", default="cpu", help="model preset (default cpu; 'none' for none)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=size, default=(256, 256), help="training crop HxW (default 256x256)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed for the pipeline alone")
    parser.add_argument("--steps", type=int, default=5, help="training steps timed per measurement")


def _dataset_root(dataset: str | None):
    import os

    from bench.common.paths import SYNTHETIC_ROOT
    from data.cityscapes import resolve_root
    from data.errors import UserError

    if dataset or os.environ.get("CITYSCAPES_DATASET"):
        return resolve_root(dataset)
    synthetic = SYNTHETIC_ROOT
    if not synthetic.is_dir():
        raise UserError(
            f"no dataset: pass --dataset, set CITYSCAPES_DATASET, or run `make data` to write "
            f"the synthetic set to {synthetic}"
        )
    return synthetic


def run(args: argparse.Namespace) -> int:
    from data.errors import UserError

    if min(args.batch, args.batches, args.steps) < 1:
        raise UserError("--batch, --batches and --steps must be at least 1")
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow()
    import keras

    from bench.perf.timing import rate
    from bench.training.train_step import build_trainable, make_train_step
    from data.cityscapes import list_samples
    from data.pipeline import train_dataset
    from models.registry import resolve_options

    root = _dataset_root(args.dataset)
    samples = list_samples(root, "train", require_images=True)
    preset = None if args.preset in (None, "", "none") else args.preset
    resolve_options(args.model, preset)  # an unknown model or preset fails before the pipeline is timed
    crop = tuple(args.crop)
    print(f"{len(samples)} training frames of {root}; batch {args.batch}, crop {crop[0]}x{crop[1]}")

    batches = iter(train_dataset(samples, batch=args.batch, crop=crop, seed=0))
    first = next(batches)  # warm-up: opens files, starts the map workers
    began = time.perf_counter()
    for _ in range(args.batches):
        next(batches)
    pipeline_rate = rate(args.batch * args.batches, time.perf_counter() - began)
    print(f"pipeline alone:          {pipeline_rate:8.1f} images/s")

    keras.utils.set_random_seed(0)
    model, optimizer, _ = build_trainable(
        args.model, preset, {}, strategy=tf.distribute.get_strategy(), accelerate=False, lr=0.01, steps=1000
    )
    step = make_train_step(model, optimizer, jit=False)
    step(*first)  # trace

    began = time.perf_counter()
    for _ in range(args.steps):
        float(step(*first)["loss"])
    model_rate = rate(args.batch * args.steps, time.perf_counter() - began)
    print(f"training, batch in memory: {model_rate:6.1f} images/s  ({args.model}, preset {preset})")

    began = time.perf_counter()
    for _ in range(args.steps):
        float(step(*next(batches))["loss"])
    fed_rate = rate(args.batch * args.steps, time.perf_counter() - began)
    print(f"training, fed by pipeline: {fed_rate:6.1f} images/s")

    headroom = pipeline_rate / model_rate
    cost = 1.0 - fed_rate / model_rate
    verdict = "not the bottleneck" if headroom >= 1.5 and cost < 0.15 else "THE BOTTLENECK"
    print(
        f"pipeline/training ratio {headroom:.1f}x; feeding from the pipeline costs {100 * cost:.0f}% of "
        f"the training rate: the pipeline is {verdict}"
    )
    return 0
