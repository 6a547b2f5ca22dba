"""`python -m bench train`: a registry model + a Cityscapes-format dataset -> a `.keras` checkpoint.

The recipe of the PSPNet paper: SGD with momentum 0.9, poly learning rate (power 0.9) from `lr` down to 0
over `steps`, weight decay, cross-entropy over pixels whose train ID is not 255, plus 0.4 x the same loss on
the auxiliary head. A plain training loop (one `tf.function` step) keeps Ctrl-C, resume and logging simple:

- `OUT/ckpt-{step}.keras` every `checkpoint_every` steps, on Ctrl-C and at the end (the newest 3 are kept);
- `--resume` restores weights, optimizer state (momentum, iteration count) and the input stream position;
- `OUT/train_log.csv` and TensorBoard scalars (`OUT/tensorboard/`) every `log_every` steps;
- `OUT/.train.lock` held while training: a second run into the same folder is refused, naming the first;
- with a GPU: mixed precision (bfloat16 compute, float32 weights, no loss scaling needed) and XLA.

Reproducibility: weights, dropout and augmentation are seeded; on CPU runs repeat to float rounding
(parallel kernels may sum in a different order), which is as exact as TensorFlow allows.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.arguments import size
from bench.atomic import check_writable, exclusive
from bench.engine import checkpoint as ckpt
from bench.engine.progress import progress_bar
from bench.engine.tensorflow_import import import_tensorflow
from data.errors import UserError
from data.normalization import IMAGENET_RGB

AUX_WEIGHT = 0.4
MOMENTUM = 0.9
POLY_POWER = 0.9
WEIGHT_DECAY = 1e-4
KEEP_CHECKPOINTS = 3
LOG_COLUMNS = ("step", "loss", "main_loss", "aux_loss", "pixel_acc", "lr", "images_per_s", "seconds")


def segmentation_loss(logits, labels):
    """Mean softmax cross-entropy over pixels whose label is not 255 (0 when a batch has none)."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, 255)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, labels, 0), logits=tf.cast(logits, tf.float32)
    )
    weights = tf.cast(valid, tf.float32)
    return tf.reduce_sum(per_pixel * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def pixel_accuracy(logits, labels):
    """Fraction of non-ignored pixels whose arg-max class is the label."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(tf.not_equal(labels, 255), tf.float32)
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_sum(hit * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def split_outputs(outputs) -> tuple[Any, Any]:
    """(logits, aux or None) from a model output: a dict per the registry contract, or a bare tensor."""
    if isinstance(outputs, dict):
        return outputs["logits"], outputs.get("aux")
    return outputs, None


def make_optimizer(lr: float, steps: int, weight_decay: float = WEIGHT_DECAY):
    """SGD + momentum with a poly schedule; decay skips BatchNorm scales/offsets and biases."""
    import keras

    schedule = keras.optimizers.schedules.PolynomialDecay(
        lr, decay_steps=steps, end_learning_rate=0.0, power=POLY_POWER
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=MOMENTUM, weight_decay=weight_decay or None)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def make_train_step(model, optimizer, aux_weight: float = AUX_WEIGHT, jit: bool = False):
    """One SGD step as a `tf.function`: (images, labels) -> dict of loss terms and pixel accuracy."""
    import tensorflow as tf

    @tf.function(jit_compile=jit)
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits, aux = split_outputs(model(images, training=True))
            main = segmentation_loss(logits, labels)
            aux_loss = segmentation_loss(aux, labels) if aux is not None else tf.constant(0.0)
            total = main + aux_weight * aux_loss
            if model.losses:
                total += tf.add_n([tf.cast(x, tf.float32) for x in model.losses])
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {
            "loss": total,
            "main_loss": main,
            "aux_loss": aux_loss,
            "pixel_acc": pixel_accuracy(logits, labels),
        }

    return step


class _Log:
    """CSV rows and TensorBoard scalars; on resume, rows past the restored step are dropped."""

    def __init__(self, out: Path, start_step: int):
        import tensorflow as tf

        self.path = out / "train_log.csv"
        rows = []
        if self.path.is_file():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.tensorboard = tf.summary.create_file_writer(str(out / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, LOG_COLUMNS).writerow({k: row[k] for k in LOG_COLUMNS})
        # Raw Summary protos (simple_value scalars): TensorBoard reads them, and writing them needs only
        # TensorFlow, not the tensorboard package.
        import tensorflow as tf
        from tensorflow.core.framework.summary_pb2 import Summary

        summary = Summary(
            value=[Summary.Value(tag=key, simple_value=float(row[key])) for key in LOG_COLUMNS[1:]]
        )
        with self.tensorboard.as_default():
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=int(row["step"]))
        self.tensorboard.flush()


def _check_args(
    steps: int,
    batch: int,
    crop: tuple[int, int],
    lr: float,
    checkpoint_every: int,
    *,
    log_every: int = 10,
    weight_decay: float = WEIGHT_DECAY,
    aux_weight: float = AUX_WEIGHT,
    seed: int = 0,
) -> None:
    """Every number checked before any work: a bad one would otherwise fail steps later, or never."""
    counts = {
        "--steps": steps,
        "--batch": batch,
        "--checkpoint-every": checkpoint_every,
        "--log-every": log_every,
    }
    for option, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{option} {value} must be a whole number of at least 1")
    if min(crop) < 1:
        raise UserError(f"--crop {crop} must be positive, e.g. 512x1024")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserError(f"--lr {lr} must be a positive number, e.g. 0.01")
    for option, value in (("--weight-decay", weight_decay), ("aux_weight", aux_weight)):
        if not (value >= 0 and math.isfinite(value)):
            raise UserError(f"{option} {value} must be a finite number of at least 0")
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed {seed} must be between 0 and 2**32 - 1")


def _is_chief() -> bool:
    """Whether this process is the one that writes (the only one without `TF_CONFIG`, else chief/worker 0)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, cluster = config.get("task") or {}, config.get("cluster") or {}
        kind, index = task.get("type"), int(task.get("index", 0) or 0)
    except (ValueError, TypeError, AttributeError):
        return True  # a malformed TF_CONFIG is TensorFlow's to report
    return kind is None or kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def _one_run_per_folder(train_fn):
    """Run `train_fn` holding the training folder's lock (`OUT/.train.lock`, the holder's pid inside).

    Two runs into one folder would interleave their checkpoints and log rows; the second one is refused at
    once, naming the first. `--out` is checked to be writable before anything else, and a folder this call
    created is removed again when the run fails before writing anything into it.
    """

    @functools.wraps(train_fn)
    def wrapper(model: str, dataset, out, *args: Any, **kwargs: Any) -> Path:
        out = Path(out)
        check_writable(out, "--out", folder=True)
        if not _is_chief():
            return train_fn(model, dataset, out, *args, **kwargs)
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        with exclusive(out / "train", f"training folder {out}"):  # refused: nothing here is ours
            try:
                return train_fn(model, dataset, out, *args, **kwargs)
            except BaseException:
                if created and all(p.name == ".train.lock" for p in out.iterdir()):
                    shutil.rmtree(out, ignore_errors=True)
                raise

    return wrapper


def _resume_point(
    out: Path, model: str, preset: str | None, options: dict | None, resume: bool
) -> tuple[Path | None, dict]:
    """The checkpoint to continue from (None for a fresh run) and its metadata; refuses to clobber."""
    existing = ckpt.list_checkpoints(out)
    if not resume:
        if existing:
            raise UserError(
                f"{out} already holds checkpoints ({existing[-1].name}): pass --resume to "
                f"continue that run or choose another --out"
            )
        return None, {}
    if not existing:
        raise UserError(f"--resume: {out} holds no ckpt-*.keras checkpoint; drop --resume to start a new run")
    meta = ckpt.read_metadata(existing[-1])
    recorded = (meta.get("model"), meta.get("preset"), meta.get("options") or {})
    # Compare as JSON sees them: tuples come back from the checkpoint as lists.
    if (
        model != recorded[0]
        or (preset is not None and preset != recorded[1])
        or (options and json.loads(json.dumps(options)) != recorded[2])
    ):
        raise UserError(
            f"--resume: {existing[-1]} was trained as model={recorded[0]} preset={recorded[1]} "
            f"options={recorded[2]}; resume with those or choose another --out"
        )
    return existing[-1], meta


@_one_run_per_folder
def train(
    model: str,
    dataset,
    out,
    *,
    steps: int,
    batch: int,
    crop: tuple[int, int] = (512, 512),
    lr: float = 0.01,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
    seed: int = 0,
    resume: bool = False,
    checkpoint_every: int = 500,
    weight_decay: float = WEIGHT_DECAY,
    aux_weight: float = AUX_WEIGHT,
    log_every: int = 10,
    progress: bool = True,
    accelerate: bool | None = None,
) -> Path:
    """Train `model` (registry name or plugin path) on the train split of `dataset`; return the final
    checkpoint path. `steps` is the total to reach: a resumed run continues from the steps already done.
    `accelerate` (default: when a GPU is present) turns on mixed precision and XLA."""
    crop = (int(crop[0]), int(crop[1]))
    _check_args(
        steps,
        batch,
        crop,
        lr,
        checkpoint_every,
        log_every=log_every,
        weight_decay=weight_decay,
        aux_weight=aux_weight,
        seed=seed,
    )
    tf = import_tensorflow()
    import keras

    from data.cityscapes import list_samples, resolve_root
    from data.pipeline import train_dataset

    out = Path(out)
    root = resolve_root(dataset)
    samples = list_samples(root, "train", require_images=True)
    resume_from, previous = _resume_point(out, model, preset, options, resume)
    if resume_from is not None:
        preset, options = previous.get("preset"), previous.get("options") or {}
    options = dict(options or {})
    out.mkdir(parents=True, exist_ok=True)

    if accelerate is None:
        accelerate = bool(tf.config.list_physical_devices("GPU"))
    keras.utils.set_random_seed(seed)
    old_policy = keras.mixed_precision.global_policy()
    if accelerate:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = ckpt.rebuild({"model": model, "preset": preset, "options": options}, aux_head=True)
    finally:
        keras.mixed_precision.set_global_policy(old_policy)
    optimizer = make_optimizer(lr, steps, weight_decay)
    net.compile(optimizer=optimizer)
    optimizer.build(net.trainable_variables)
    if resume_from is not None:
        ckpt.load_weights(net, resume_from)
    start = int(optimizer.iterations.numpy())
    seconds_before = float(previous.get("seconds", 0.0))

    def metadata(done: int, seconds: float) -> dict[str, Any]:
        return {
            "model": model,
            "preset": preset,
            "options": options,
            "num_classes": 19,
            "steps": done,
            "target_steps": steps,
            "batch": batch,
            "crop": list(crop),
            "lr": lr,
            "weight_decay": weight_decay,
            "aux_weight": aux_weight,
            "seed": seed,
            "input": IMAGENET_RGB.to_dict(),
            "dataset": str(root),
            "train_samples": len(samples),
            "seconds": round(seconds, 3),
            "accelerated": accelerate,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save(done: int, seconds: float) -> Path:
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

    print(
        f"training {model} (preset {preset}, options {options}) on {len(samples)} frames of {root}: "
        f"steps {start}->{steps}, batch {batch}, crop {crop[0]}x{crop[1]}, lr {lr}, "
        f"{'mixed bfloat16 + XLA' if accelerate else 'float32'}, "
        f"{net.count_params():,} parameters"
    )
    log = _Log(out, start)
    step_fn = make_train_step(net, optimizer, aux_weight, jit=accelerate)
    batches = iter(train_dataset(samples, batch=batch, crop=crop, seed=seed, start_step=start))
    bar = progress_bar(steps, initial=start, desc="train", unit="step", enabled=progress)
    began = time.perf_counter()
    done, sums, window_start, window_steps, rate = start, {}, time.perf_counter(), 0, 0.0
    path = None
    try:
        while done < steps:
            images, labels = next(batches)
            values = {k: float(v) for k, v in step_fn(images, labels).items()}
            if not math.isfinite(values["loss"]):
                raise UserError(
                    f"the loss became {values['loss']} at step {done + 1}: training diverged; "
                    f"lower --lr (now {lr}) and start again in a new --out"
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
            if done % log_every == 0 or done == steps:
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
            if done % checkpoint_every == 0 and done < steps:
                save(done, seconds_before + now - began)
        path = save(done, seconds_before + time.perf_counter() - began)
    except KeyboardInterrupt:
        bar.close()
        path = save(done, seconds_before + time.perf_counter() - began)
        print(f"\ninterrupted at step {done}: saved {path}; continue with --resume")
        raise
    finally:
        bar.close()
    total_seconds = seconds_before + time.perf_counter() - began
    print(f"saved {path} after {done} steps ({total_seconds:.0f} s of training)")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registry name (see `bench models`) or pkg.mod:func")
    parser.add_argument("--preset", default=None, help="named option set of the model, e.g. cpu")
    parser.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option (repeatable), e.g. --model-opt depth=101",
    )
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--steps", type=int, required=True, help="total optimizer steps to reach")
    parser.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    parser.add_argument("--crop", type=size, default=(512, 512), help="training crop HxW (default 512x512)")
    parser.add_argument("--lr", type=float, default=0.01, help="initial learning rate (default 0.01)")
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY, help="default 1e-4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        metavar="K",
        help="save a checkpoint every K steps (and always at the end and on Ctrl-C)",
    )
    parser.add_argument("--log-every", type=int, default=10, metavar="K", help="CSV/TensorBoard row every K")
    parser.add_argument("--out", required=True, help="training folder for checkpoints and logs")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--float32", action="store_true", help="no mixed precision or XLA even on a GPU")


def run(args: argparse.Namespace) -> int:
    from models.registry import parse_option

    options = dict(parse_option(o) for o in args.model_opt)
    train(
        args.model,
        args.dataset,
        args.out,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        preset=args.preset,
        options=options or None,
        seed=args.seed,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        weight_decay=args.weight_decay,
        log_every=args.log_every,
        progress=not args.no_progress,
        accelerate=False if args.float32 else None,
    )
    return 0
