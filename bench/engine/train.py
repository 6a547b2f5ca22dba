"""`python -m bench train`: a registry model + a Cityscapes-format dataset -> a `.keras` checkpoint.

The recipe of the PSPNet paper: SGD with momentum 0.9, poly learning rate (power 0.9) from `lr` down to 0
over `steps`, weight decay, cross-entropy over pixels whose train ID is not 255, plus 0.4 x the same loss on
the auxiliary head. Named recipes (`bench/engine/recipes.py`, `--recipe`) hold every setting of a run.
A plain training loop (one `tf.function` step) keeps Ctrl-C, resume and logging simple:

- `OUT/ckpt-{step}.keras` every `checkpoint_every` steps, on Ctrl-C and at the end (the newest 3 are kept);
- `--resume` restores weights, optimizer state (momentum, iteration count) and the input stream position;
- `OUT/train_log.csv` and TensorBoard scalars (`OUT/tensorboard/`) every `log_every` steps;
- `--val-every K`: the val split scored every K steps with the exact evaluator (`OUT/val_log.csv`,
  TensorBoard, the curve `OUT/val_miou.png`), the best checkpoint by val mIoU kept as `OUT/best.keras`;
- `OUT/.train.lock` held while training: a second run into the same folder is refused, naming the first;
- with a GPU: mixed precision (bfloat16 compute, float32 weights, no loss scaling needed) and XLA.

Scale-out is TensorFlow's own (`bench/engine/strategy.py`): `--strategy mirrored` over local GPUs,
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

import argparse
import csv
import functools
import json
import math
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.arguments import size
from bench.atomic import check_writable, exclusive
from bench.engine import checkpoint as ckpt
from bench.engine import recipes
from bench.engine.progress import progress_bar
from bench.engine.recipes import AUX_WEIGHT, WEIGHT_DECAY
from bench.engine.strategy import STRATEGIES, chief_of, read_tf_config
from bench.engine.tensorflow_import import import_tensorflow
from data.errors import UserError
from data.normalization import IMAGENET_RGB

MOMENTUM = 0.9
POLY_POWER = 0.9
KEEP_CHECKPOINTS = 3
BEST_CHECKPOINT = "best.keras"
LOG_COLUMNS = ("step", "loss", "main_loss", "aux_loss", "pixel_acc", "lr", "images_per_s", "seconds")
VAL_COLUMNS = ("step", "miou", "iiou", "category_miou", "category_iiou", "n_images", "seconds")
VAL_CURVE = "val_miou.png"


def valid_pixels(labels):
    """Number of pixels whose label is not 255, as float32 (the loss normaliser)."""
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(tf.not_equal(tf.cast(labels, tf.int32), 255), tf.float32))


def segmentation_loss(logits, labels, normalizer=None):
    """Softmax cross-entropy summed over pixels whose label is not 255, divided by `normalizer` (default:
    their count; a replica passes the global count); 0 when there are none."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, 255)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(valid, labels, 0), logits=tf.cast(logits, tf.float32)
    )
    weights = tf.cast(valid, tf.float32)
    normalizer = tf.reduce_sum(weights) if normalizer is None else normalizer
    return tf.reduce_sum(per_pixel * weights) / tf.maximum(normalizer, 1.0)


def pixel_accuracy(logits, labels, normalizer=None):
    """Non-ignored pixels whose arg-max class is the label, divided by `normalizer` (default: their count)."""
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(tf.not_equal(labels, 255), tf.float32)
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
    normalizer = tf.reduce_sum(valid) if normalizer is None else normalizer
    return tf.reduce_sum(hit * valid) / tf.maximum(normalizer, 1.0)


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


def make_train_step(model, optimizer, aux_weight: float = AUX_WEIGHT, jit: bool = False, strategy=None):
    """One SGD step as a `tf.function`: (images, labels) -> dict of loss terms and pixel accuracy.

    Under a `tf.distribute` strategy (default: the current one) the inputs are per-replica values (see
    `strategy.experimental_distribute_values_from_function`; plain tensors for one replica); each replica
    divides its loss by the global count of valid pixels, so the all-reduced (summed) gradients and the
    returned sums are those of one process on the whole global batch.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    add = tf.distribute.ReduceOp.SUM

    def replica_step(images, labels):
        context = tf.distribute.get_replica_context()
        count = context.all_reduce(add, valid_pixels(labels))
        with tf.GradientTape() as tape:
            logits, aux = split_outputs(model(images, training=True))
            main = segmentation_loss(logits, labels, count)
            aux_loss = segmentation_loss(aux, labels, count) if aux is not None else tf.constant(0.0)
            total = main + aux_weight * aux_loss
            if model.losses:  # regularisers: once per global step, shared out over the replicas
                total += tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) / replicas
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {
            "loss": total,
            "main_loss": main,
            "aux_loss": aux_loss,
            "pixel_acc": pixel_accuracy(logits, labels, count),
        }

    @tf.function(jit_compile=jit)
    def step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels))
        return {key: strategy.reduce(add, value, axis=None) for key, value in per_replica.items()}

    return step


class _CsvLog:
    """Rows appended to a CSV file; on resume, rows past the restored step are dropped."""

    def __init__(self, path: Path, columns: tuple[str, ...], start_step: int):
        self.path, self.columns = path, columns
        rows = []
        if path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: row[k] for k in self.columns})

    def rows(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))


class _TensorBoard:
    """Scalars for TensorBoard (`tensorboard --logdir OUT/tensorboard`; the package is pinned)."""

    def __init__(self, out: Path):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(str(out / "tensorboard"))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        import tensorflow as tf

        with self.writer.as_default():
            for key, value in scalars.items():
                tf.summary.scalar(key, float(value), step=int(step))
        self.writer.flush()


class _Log:
    """What the chief writes besides checkpoints: the training CSV, the validation CSV and its curve, and
    TensorBoard scalars."""

    def __init__(self, out: Path, start_step: int, *, validation: bool, target: float | None = None):
        self.out, self.target = out, target
        self.train = _CsvLog(out / "train_log.csv", LOG_COLUMNS, start_step)
        self.val = _CsvLog(out / "val_log.csv", VAL_COLUMNS, start_step) if validation else None
        self.tensorboard = _TensorBoard(out)

    def write(self, row: dict[str, float]) -> None:
        self.train.write(row)
        self.tensorboard.write(int(row["step"]), {k: row[k] for k in LOG_COLUMNS[1:]})

    def write_validation(self, row: dict[str, float]) -> None:
        from bench.report.plots import miou_curve

        self.val.write(row)
        self.tensorboard.write(int(row["step"]), {f"val/{k}": row[k] for k in VAL_COLUMNS[1:5]})
        rows = self.val.rows()
        miou_curve(
            [int(r["step"]) for r in rows],
            [100.0 * float(r["miou"]) if r["miou"] else float("nan") for r in rows],
            self.out / VAL_CURVE,
            target=self.target,
        )


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
    val_every: int = 0,
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
    if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 0:
        raise UserError(f"--val-every {val_every} must be 0 (no validation) or a whole number of steps")
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
        return chief_of(read_tf_config())
    except UserError:
        return True  # a malformed TF_CONFIG is reported when the strategy is made


def _one_run_per_folder(train_fn):
    """Run `train_fn` holding the training folder's lock (`OUT/.train.lock`, the holder's pid inside).

    Two runs into one folder would interleave their checkpoints and log rows; the second one is refused at
    once, naming the first. `--out` is checked to be writable before anything else, and a folder this call
    created is removed again when the run fails before writing anything into it. Workers other than the
    chief write nothing into `--out`: no check, no lock.
    """

    @functools.wraps(train_fn)
    def wrapper(model: str, dataset, out, *args: Any, **kwargs: Any) -> Path:
        out = Path(out)
        if not _is_chief():
            return train_fn(model, dataset, out, *args, **kwargs)
        check_writable(out, "--out", folder=True)
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


def _best_so_far(out: Path, start: int) -> float:
    """Val mIoU of `OUT/best.keras` when it was reached at or before the resumed step (else -inf)."""
    path = out / BEST_CHECKPOINT
    if not path.is_file():
        return -math.inf
    meta = ckpt.read_metadata(path)
    if int(meta.get("val_step", start + 1)) > start or meta.get("val_miou") is None:
        return -math.inf
    return float(meta["val_miou"])


def _worker_lost(exc: Exception, done: int, out: Path) -> UserError:
    latest = ckpt.list_checkpoints(out)
    where = f"the latest checkpoint is {latest[-1]}" if latest else "no checkpoint was written yet"
    return UserError(
        f"lost contact with another worker at step {done + 1} ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''}); {where}: restart every worker with --resume"
    )


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
    strategy: str = "auto",
    cpu_replicas: int | None = None,
    recipe: str | None = None,
    scale_range: tuple[float, float] = recipes.SCALE_RANGE,
    flip: bool = True,
    sync_bn: bool = True,
    val_every: int = 0,
    val_limit: int | None = None,
) -> Path:
    """Train `model` (registry name or plugin path) on the train split of `dataset`; return the final
    checkpoint path. `steps` is the total to reach: a resumed run continues from the steps already done.
    `accelerate` (default: when a GPU is present) turns on mixed precision and XLA. `strategy` is one of
    `STRATEGIES` (see `bench.engine.strategy`); `recipe` is the name recorded with the checkpoints.
    `val_every` > 0 scores the val split (its first `val_limit` frames) every that many steps."""
    from data.cityscapes import list_samples, resolve_root

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
        val_every=val_every,
    )
    out = Path(out)
    root = resolve_root(dataset)
    samples = list_samples(root, "train", require_images=True)

    # The strategy comes before any other TensorFlow work (multi-worker collectives and logical CPU
    # devices are fixed when the runtime starts).
    from bench.engine.strategy import make_distribution, synchronize_batch_norm

    tf = import_tensorflow()
    dist = make_distribution(strategy, cpu_replicas=cpu_replicas)
    if batch % dist.replicas:
        raise UserError(
            f"--batch {batch} is the global batch and must split evenly over the {dist.replicas} "
            f"replicas of the {dist.kind} strategy: use a multiple of {dist.replicas}"
        )
    import keras

    from data import pipeline

    resume_from, previous = _resume_point(out, model, preset, options, resume)
    if resume_from is not None:
        preset, options = previous.get("preset"), previous.get("options") or {}
    options = dict(options or {})
    validator = None
    if val_every:
        from bench.engine.validate import Validator

        validator = (
            Validator(root, "val", input_spec=IMAGENET_RGB, limit=val_limit) if dist.is_chief else None
        )
    if dist.is_chief:
        out.mkdir(parents=True, exist_ok=True)

    if accelerate is None:
        accelerate = bool(tf.config.list_physical_devices("GPU"))
    xla = bool(accelerate) and dist.replicas == 1
    keras.utils.set_random_seed(seed)
    with dist.strategy.scope():
        old_policy = keras.mixed_precision.global_policy()
        if accelerate:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            net = ckpt.rebuild({"model": model, "preset": preset, "options": options}, aux_head=True)
        finally:
            keras.mixed_precision.set_global_policy(old_policy)
        synced = synchronize_batch_norm(net) if sync_bn and dist.replicas > 1 else 0
        optimizer = make_optimizer(lr, steps, weight_decay)
        net.compile(optimizer=optimizer)
        optimizer.build(net.trainable_variables)
        if resume_from is not None:
            ckpt.load_weights(net, resume_from)
    start = int(optimizer.iterations.numpy())
    seconds_before = float(previous.get("seconds", 0.0))
    best = _best_so_far(out, start) if validator else -math.inf
    target = recipes.RECIPES[recipe].published if recipe in recipes.RECIPES else None

    def metadata(done: int, seconds: float) -> dict[str, Any]:
        return {
            "model": model,
            "preset": preset,
            "options": options,
            "num_classes": 19,
            "steps": done,
            "target_steps": steps,
            "recipe": recipe,
            "batch": batch,
            "crop": list(crop),
            "lr": lr,
            "weight_decay": weight_decay,
            "aux_weight": aux_weight,
            "scale_range": list(scale_range),
            "flip": flip,
            "seed": seed,
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
        f"{', recipe ' + recipe if recipe else ''}) on {len(samples)} frames of {root}: "
        f"steps {start}->{steps}, global batch {batch}, crop {crop[0]}x{crop[1]}, lr {lr}, "
        f"{precision}, {dist.describe()}{', SyncBN' if synced else ''}, {net.count_params():,} parameters",
        flush=True,
    )
    log = (
        _Log(out, start, validation=bool(val_every), target=target and target.miou) if dist.is_chief else None
    )
    step_fn = make_train_step(net, optimizer, aux_weight, jit=xla, strategy=dist.strategy)
    batches = iter(
        pipeline.train_dataset(
            samples,
            batch=batch,
            crop=crop,
            seed=seed,
            start_step=start,
            scale_range=tuple(scale_range),
            flip=flip,
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

    bar = progress_bar(steps, initial=start, desc="train", unit="step", enabled=progress and dist.is_chief)
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
            if log and (done % log_every == 0 or done == steps):
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
            if validator and (done % val_every == 0 or done == steps):
                validate(done, seconds_before + now - began)
                window_start = time.perf_counter()  # validation time is not training speed
        path = save(done, seconds_before + time.perf_counter() - began)
    except KeyboardInterrupt:
        bar.close()
        path = save(done, seconds_before + time.perf_counter() - began)
        if path:
            print(f"\ninterrupted at step {done}: saved {path}; continue with --resume")
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
        "--val-limit", type=int, default=None, metavar="N", help="validate on the first N frames only"
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
    from models.registry import parse_option

    recipe = resolve_recipe(args)
    options = dict(parse_option(o) for o in args.model_opt)
    train(
        recipe.model,
        args.dataset,
        args.out,
        steps=recipe.steps,
        batch=recipe.batch,
        crop=recipe.crop,
        lr=recipe.lr,
        preset=recipe.preset,
        options=options or None,
        seed=args.seed,
        resume=args.resume,
        checkpoint_every=recipe.checkpoint_every,
        weight_decay=recipe.weight_decay,
        aux_weight=recipe.aux_weight,
        log_every=args.log_every,
        progress=not args.no_progress,
        accelerate=False if args.float32 else None,
        strategy=args.strategy,
        cpu_replicas=args.cpu_replicas,
        recipe=recipe.name or None,
        scale_range=recipe.scale_range,
        flip=recipe.flip,
        sync_bn=recipe.sync_bn,
        val_every=recipe.val_every,
        val_limit=args.val_limit,
    )
    return 0
