"""`train(recipe, dataset, out, run=RunOptions(...))`: a registry model + a Cityscapes-format dataset ->
a `.keras` checkpoint (the command is bench/training/train_command.py).

The recipe (bench/training/recipes.py) holds every setting that shapes the result (model, hyper-parameters,
seed); `RunOptions` how this run goes (resume, strategy, logging, validation subset, progress).
Losses are in losses.py, the optimizer, step and model builder in train_step.py, the logs in train_log.py.

The recipe of the PSPNet paper: SGD with momentum 0.9, poly learning rate (power 0.9) from `lr` down to 0
over `steps`, weight decay, cross-entropy over pixels whose train ID is not 255, plus 0.4 x the same loss on
the auxiliary head.
A plain training loop (one `tf.function` step) keeps Ctrl-C, resume and logging simple:

- `OUT/ckpt-{step}.keras` every `checkpoint_every` steps, on Ctrl-C and at the end (the newest 3 are kept);
- `--resume` restores weights, optimizer state (momentum, iteration count) and the input stream position;
- `OUT/train_log.csv` and TensorBoard scalars (`OUT/tensorboard/`) every `log_every` steps;
- `--val-every K`: the val split scored every K steps with the exact evaluator (`OUT/val_log.csv`,
  TensorBoard, the curve `OUT/val_miou.png`), the best checkpoint by val mIoU kept as `OUT/best.keras`;
- `OUT/.train.lock` held while training: a second run into the same folder is refused, naming the first;
- with a GPU: mixed precision (bfloat16 compute, float32 weights, no loss scaling needed) and XLA.

Scale-out is TensorFlow's own (`bench/training/strategy.py`): `--strategy mirrored` over local GPUs,
`multiworker` across processes or hosts from `TF_CONFIG`. `--batch` is the global batch; every replica
reads its slice of each global batch (the same samples and augmentation one process would read), the loss
of each replica is its pixels' sum divided by the global count of valid pixels, so the summed gradients
are one process's; BatchNorm is synchronised across replicas. Only the chief writes into `--out`; the
other workers read it to resume (so `--out` must be on a file system every worker sees). XLA compiles the
step only with one replica: cross-replica synchronisation (SyncBN, gradient all-reduce) cannot sit in an
XLA cluster on a multi-device strategy.

Reproducibility: weights, dropout and augmentation are seeded; on CPU runs repeat to float rounding
(parallel kernels may sum in a different order), which is as exact as TensorFlow allows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common.atomic import check_writable, exclusive
from bench.common.numbers import count
from bench.common.progress import progress_bar
from bench.common.tensorflow_import import import_tensorflow
from bench.sources import keras_checkpoint as ckpt
from bench.training.cluster import check_plan, read_tf_config
from bench.training.folder import BEST_CHECKPOINT, best_so_far, is_chief, resume_point, training_folder
from bench.training.recipes import Recipe
from bench.training.train_log import TrainingLog
from data.errors import UserError
from data.normalization import IMAGENET_RGB
from data.pixels import MAX_PIXELS

KEEP_CHECKPOINTS = 3


@dataclass(frozen=True)
class RunOptions:
    """How one training run goes, beside the recipe's settings (none of these change the weights):
    `resume` from the latest checkpoint of `out`; the `tf.distribute` `strategy` (one of `STRATEGIES`) and
    `cpu_replicas` logical CPU devices to mirror over; `accelerate` mixed precision and XLA (None: when a
    GPU is present); a log row every `log_every` steps; validation on the first `val_limit` frames; a
    progress bar; at most `worker_timeout` seconds waiting for the other workers of a multi-worker job."""

    resume: bool = False
    strategy: str = "auto"
    cpu_replicas: int | None = None
    accelerate: bool | None = None
    log_every: int = 10
    val_limit: int | None = None
    progress: bool = True
    worker_timeout: float = 300.0
    resume_hint: str = "continue with --resume"  # what Ctrl-C tells the user (bench run resumes by itself)


def check_recipe(recipe: Recipe, run: RunOptions) -> str:
    """Every number checked before any work: a bad one would otherwise fail steps later, or never.
    Returns the strategy as far as it is known before TensorFlow starts (`check_plan`)."""
    if not recipe.model:
        raise UserError("the recipe names no model: give --model (a registry name, see `bench models`)")
    counts = {
        "--steps": recipe.steps,
        "--batch": recipe.batch,
        "--checkpoint-every": recipe.checkpoint_every,
        "--log-every": run.log_every,
    }
    for option, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{option} {value} must be a whole number of at least 1")
    val_every = recipe.val_every
    if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 0:
        raise UserError(f"--val-every {val_every} must be 0 (no validation) or a whole number of steps")
    if min(recipe.crop) < 1:
        raise UserError(f"--crop {recipe.crop} must be positive, e.g. 512x1024")
    step_pixels = recipe.batch * recipe.crop[0] * recipe.crop[1]
    if step_pixels > MAX_PIXELS:  # the pixel budget of one decode bounds one step's input too
        raise UserError(
            f"--batch {recipe.batch} x --crop {recipe.crop[0]}x{recipe.crop[1]} is {step_pixels >> 20:,} Mpx "
            f"per step, more than the pixel budget of {MAX_PIXELS >> 20} Mpx: too large for memory "
            f"(activations take ~100x that); lower --batch (PSPNet trains with 8 at 512x1024: 4 Mpx)"
        )
    if not (recipe.lr > 0 and math.isfinite(recipe.lr)):
        raise UserError(f"--lr {recipe.lr} must be a positive number, e.g. 0.01")
    for option, value in (("--weight-decay", recipe.weight_decay), ("aux_weight", recipe.aux_weight)):
        if not (value >= 0 and math.isfinite(value)):
            raise UserError(f"{option} {value} must be a finite number of at least 0")
    if not 0 <= recipe.seed < 2**32:
        raise UserError(f"--seed {recipe.seed} must be between 0 and 2**32 - 1")
    return check_plan(
        run.strategy,
        cpu_replicas=run.cpu_replicas,
        batch=recipe.batch,
        tf_config=read_tf_config(),
        worker_timeout=run.worker_timeout,
    )


def _worker_lost(exc: Exception, done: int, out: Path) -> UserError:
    latest = ckpt.list_checkpoints(out)
    where = f"the latest checkpoint is {latest[-1]}" if latest else "no checkpoint was written yet"
    return UserError(
        f"lost contact with another worker at step {done + 1} ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''}); {where}: restart every worker with --resume"
    )


def train(recipe: Recipe, dataset, out, *, run: RunOptions = RunOptions()) -> Path:
    """Train `recipe.model` (registry name or plugin path) with `recipe`'s settings on the train split of
    `dataset`; return the final checkpoint path. `recipe.steps` is the total to reach: a resumed run
    continues from the steps already done. The checkpoints record the recipe (its name and settings)."""
    from data.cityscapes import check_training_labels, list_samples, resolve_root

    plan = check_recipe(recipe, run)
    out = Path(out)
    root = resolve_root(dataset)
    samples = list_samples(root, "train", require_images=True)
    check_training_labels(samples)  # a truncated or unreadable label file is named now, not steps later
    if is_chief():
        check_writable(out, "--out", folder=True)  # before TensorFlow starts
        if out.is_dir():  # a folder another run trains into is refused at once, not after start-up
            with exclusive(out / "train", f"training folder {out}"):
                pass
    # The strategy comes before any other TensorFlow work (multi-worker collectives and logical CPU
    # devices are fixed when the runtime starts), and before the folder is taken: a worker that gives up
    # waiting for its peers ends the process at once, with nothing written.
    from bench.training.strategy import check_same_settings, make_distribution

    if plan != "multiworker":  # `python -m bench train` held SIGTERM for a wait for peers that won't come
        from bench.training.peers import release_termination

        release_termination()
    import_tensorflow(training=True)
    dist = make_distribution(run.strategy, cpu_replicas=run.cpu_replicas, worker_timeout=run.worker_timeout)
    check_same_settings(  # workers of one job started with other options: refused on every one of them
        dist,
        {
            "--batch": (recipe.batch,),
            "--seed": (recipe.seed,),
            "--steps": (recipe.steps,),
            "--crop": recipe.crop,
            "--lr": (recipe.lr,),
        },
    )
    with training_folder(out):
        return _train(recipe, root, samples, out, run, dist)


def _train(recipe: Recipe, root: Path, samples, out: Path, run: RunOptions, dist) -> Path:
    tf = import_tensorflow(training=True)
    steps, batch, crop = recipe.steps, recipe.batch, (int(recipe.crop[0]), int(recipe.crop[1]))
    if batch % dist.replicas:
        raise UserError(
            f"--batch {batch} is the global batch and must split evenly over the {dist.replicas} "
            f"replicas of the {dist.kind} strategy: use a multiple of {dist.replicas}"
        )
    import keras

    from bench.training.train_step import build_trainable, make_train_step
    from data import pipeline

    model, preset, options = recipe.model, recipe.preset, dict(recipe.options or {})
    resume_from, previous = resume_point(out, model, preset, options or None, run.resume)
    if resume_from is not None:
        preset, options = previous.get("preset"), previous.get("options") or {}
    validator = None
    if recipe.val_every and dist.is_chief:
        from bench.training.validate import Validator

        validator = Validator(root, "val", input_spec=IMAGENET_RGB, limit=run.val_limit)
    if dist.is_chief:
        out.mkdir(parents=True, exist_ok=True)

    accelerate = bool(tf.config.list_physical_devices("GPU")) if run.accelerate is None else run.accelerate
    xla = bool(accelerate) and dist.replicas == 1
    keras.utils.set_random_seed(recipe.seed)
    net, optimizer, synced = build_trainable(
        model,
        preset,
        options,
        strategy=dist.strategy,
        accelerate=bool(accelerate),
        lr=recipe.lr,
        steps=steps,
        weight_decay=recipe.weight_decay,
        sync_bn=recipe.sync_bn,
    )
    if resume_from is not None:
        with dist.strategy.scope():
            ckpt.load_weights(net, resume_from)
    start = int(optimizer.iterations.numpy())
    seconds_before = float(previous.get("seconds", 0.0))
    best = best_so_far(out, start) if validator else -math.inf

    def metadata(done: int, seconds: float) -> dict[str, Any]:
        return {
            "model": model,
            "preset": preset,
            "options": options,
            "num_classes": 19,
            "steps": done,
            "target_steps": steps,
            "recipe": recipe.name or None,
            "batch": batch,
            "crop": list(crop),
            "lr": recipe.lr,
            "weight_decay": recipe.weight_decay,
            "aux_weight": recipe.aux_weight,
            "scale_range": list(recipe.scale_range),
            "flip": recipe.flip,
            "seed": recipe.seed,
            "strategy": dist.kind,
            "replicas": dist.replicas,
            "workers": dist.workers,
            "sync_bn": bool(synced),
            "input": IMAGENET_RGB.to_dict(),
            "dataset": str(root),
            "train_samples": len(samples),
            "seconds": round(seconds, 3),
            "accelerated": accelerate,
            "xla": xla,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(done: int, seconds: float) -> Path | None:
        if not dist.is_chief:  # the other workers write nothing into --out
            return None
        try:
            path = ckpt.save(net, out / ckpt.checkpoint_name(done), metadata(done, seconds))
        except OSError as exc:
            raise UserError(
                f"cannot save checkpoint {out / ckpt.checkpoint_name(done)} ({exc.strerror or exc}): "
                f"free space or choose another --out, then --resume"
            ) from exc
        ckpt.prune(out, KEEP_CHECKPOINTS)
        return path

    if start >= steps:
        print(f"{resume_from} already has {start} of {steps} steps: nothing to train")
        return resume_from

    precision = (
        "mixed bfloat16" + (" + XLA" if xla else " (XLA only with one replica)") if accelerate else "float32"
    )
    print(
        f"training {model} (preset {preset}, options {options}"
        f"{', recipe ' + recipe.name if recipe.name else ''}) on {count(len(samples), 'frame')} of {root}: "
        f"steps {start}->{steps}, global batch {batch}, crop {crop[0]}x{crop[1]}, lr {recipe.lr}, "
        f"{precision}, {dist.describe()}{', SyncBN' if synced else ''}, {net.count_params():,} parameters",
        flush=True,
    )
    published = recipe.published()
    target = published.miou if published else None
    log = TrainingLog(out, start, validation=bool(recipe.val_every), target=target) if dist.is_chief else None
    step_fn = make_train_step(net, optimizer, recipe.aux_weight, jit=xla, strategy=dist.strategy)
    batches = iter(
        pipeline.train_dataset(
            samples,
            batch=batch,
            crop=crop,
            seed=recipe.seed,
            start_step=start,
            scale_range=tuple(recipe.scale_range),
            flip=recipe.flip,
            replicas=dist.local_replicas,
            num_replicas=dist.replicas,
        )
    )
    slot = {replica: i for i, replica in enumerate(dist.local_replicas)}

    def next_inputs():
        # One slice of the global batch per local replica, handed to the replica of that global id.
        parts = [next(batches) for _ in dist.local_replicas]
        return tuple(
            dist.strategy.experimental_distribute_values_from_function(
                lambda ctx, j=j: parts[slot[ctx.replica_id_in_sync_group]][j]
            )
            for j in (0, 1)
        )

    def validate(done: int, seconds: float) -> None:
        nonlocal best
        began_val = time.perf_counter()
        result = validator(net)
        miou = result.miou
        log.write_validation(
            {
                "step": done,
                "miou": miou,
                "iiou": result.iiou,
                "category_miou": result.category_miou,
                "category_iiou": result.category_iiou_mean,
                "n_images": result.n_images,
                "seconds": time.perf_counter() - began_val,
            }
        )
        note = ""
        if math.isfinite(miou) and miou > best:
            best = miou
            meta = {**metadata(done, seconds), "val_miou": miou, "val_step": done}
            ckpt.save(net, out / BEST_CHECKPOINT, meta)
            note = f", best so far: saved {out / BEST_CHECKPOINT}"
        say(f"step {done}: val mIoU {100 * miou:.2f} on {result.n_images} frames{note}")

    bar = progress_bar(
        steps, initial=start, desc="train", unit="step", enabled=run.progress and dist.is_chief
    )
    say = getattr(bar, "write", print)  # a tqdm bar prints lines above itself

    began = time.perf_counter()
    done, sums, window_start, window_steps, rate = start, {}, time.perf_counter(), 0, 0.0
    path = None
    try:
        while done < steps:
            images, labels = next_inputs()
            try:
                values = {k: float(v) for k, v in step_fn(images, labels).items()}
            except (
                tf.errors.UnavailableError,
                tf.errors.CancelledError,
                tf.errors.DeadlineExceededError,
            ) as exc:
                if dist.workers > 1:
                    raise _worker_lost(exc, done, out) from exc
                raise
            if not math.isfinite(values["loss"]):
                raise UserError(
                    f"the loss became {values['loss']} at step {done + 1}: training diverged; "
                    f"lower --lr (now {recipe.lr}) and start again in a new --out"
                )
            done += 1
            window_steps += 1
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value
            now = time.perf_counter()
            rate = batch * window_steps / max(now - window_start, 1e-9)
            lr_now = float(optimizer.learning_rate)
            bar.update(1)
            bar.set_postfix(loss=f"{values['loss']:.3f}", lr=f"{lr_now:.2e}", img_s=f"{rate:.1f}")
            if log and (done % run.log_every == 0 or done == steps):
                log.write(
                    {
                        "step": done,
                        **{k: v / window_steps for k, v in sums.items()},
                        "lr": lr_now,
                        "images_per_s": rate,
                        "seconds": seconds_before + now - began,
                    }
                )
                sums, window_start, window_steps = {}, now, 0
            if done % recipe.checkpoint_every == 0 and done < steps:
                save(done, seconds_before + now - began)
            if validator and (done % recipe.val_every == 0 or done == steps):
                validate(done, seconds_before + now - began)
                window_start = time.perf_counter()  # validation time is not training speed
        path = save(done, seconds_before + time.perf_counter() - began)
    except KeyboardInterrupt:
        bar.close()
        # Ctrl-C may land after a step updated the weights and before `done` counted it: the optimizer's
        # own count is what the weights hold, so the checkpoint is named for it
        done = int(optimizer.iterations.numpy())
        path = save(done, seconds_before + time.perf_counter() - began)
        if path:
            print(f"\ninterrupted at step {done}: saved {path}; {run.resume_hint}")
        raise
    finally:
        bar.close()
    total_seconds = seconds_before + time.perf_counter() - began
    if path is None:
        print(
            f"worker {dist.worker} done after {done} steps ({total_seconds:.0f} s); "
            f"the chief saved the checkpoint"
        )
        return out / ckpt.checkpoint_name(done)
    print(f"saved {path} after {done} steps ({total_seconds:.0f} s of training)")
    return path
