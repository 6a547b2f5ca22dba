"""`python -m bench predict`: a checkpoint -> one label-ID PNG per frame, in the official submission format.

Files are `OUT/{city}_{seq}_{frame}_leftImg8bit.png`, single-channel 8-bit label IDs (what
cityscapesScripts and `bench evaluate` read). `--colorize` writes palette images to the sibling folder
`OUT_color/`, never inside OUT: cityscapesScripts matches every PNG under the prediction folder whose name
starts with `{city}_{seq}_{frame}`, so colour images there would be taken for predictions.

Modes (logits are averaged, then the arg-max is taken):
- whole: the full frame in one forward pass;
- slide: windows of `crop` every `stride` pixels (default: 2/3 of the crop, i.e. 1/3 overlap), the last
  window of a row/column flush with the border, windows clipped to frames smaller than the crop (as in
  mmsegmentation), overlapping logits averaged;
- multiscale: the frame resized by each of `scales` (bilinear), each scale predicted whole (or by sliding
  windows when `crop` is given), logits resized back to the frame and averaged.
`flip` adds the mirrored frame to any mode.

Stats (also written to `OUT/predict_stats.json`): images/s over the run (decode, inference and writing,
after a warm-up frame that pays for tracing), per-frame latency p50/p95 (inference and arg-max, decoding
and writing excluded), peak resident memory of the process (and GPU memory when there is one), and where
it ran: device, threads, TensorFlow version, precision, batch and frame size.

`--precision bf16` computes in bfloat16 (float32 weights, float32 logits and arg-max; models/precision.py).
`--evaluate` scores each frame from the array just predicted, in a worker thread while the model computes
the next one (bench/evaluation/streaming.py): the same numbers as `bench evaluate` on the written files.

OUT holds exactly one run's frames: they are written to a hidden sibling folder that replaces OUT only when
the run has finished, so a stale frame of an earlier run is never scored with the new ones and a crash or
Ctrl-C leaves OUT as it was. `predict_stats.json` marks a folder as written by us; a non-empty folder
without it (someone else's files) is refused, never deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import io
import json
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.arguments import MAX_SCALE, size
from bench.arguments import scales as parse_scales
from bench.atomic import check_writable, replaced_folder, write_bytes, write_text
from bench.engine import checkpoint as ckpt
from bench.engine.progress import progress_bar
from bench.engine.tensorflow_import import import_tensorflow
from data.errors import UserError
from models.inference_modes import DEFAULT_SCALES, MODES, frame_logits, scales_for
from models.precision import DEFAULT_PRECISION, PRECISIONS

STATS_NAME = "predict_stats.json"


def load_checkpoint(path: str | os.PathLike, *, fold_bn: bool = False, precision: str = "fp32"):
    """(inference model emitting logits (B, H, W, C), metadata) from a checkpoint file or training folder.

    Checkpoints of `bench train` are rebuilt from the registry and their weights loaded; a plain `.keras`
    file from elsewhere is loaded as saved (its custom layers must be importable and registered).
    `fold_bn` merges BatchNorm into the convolutions before it (same outputs to float rounding, faster);
    a model that cannot be folded is returned as it is, with a warning. `precision` "bf16" rebuilds the
    model under Keras' mixed_bfloat16 policy (models/precision.py); weights stay float32.
    """
    import keras

    from models.precision import check_precision

    path = ckpt.resolve(path)
    metadata = ckpt.read_metadata(path)
    if check_precision(precision) != "fp32" and not metadata.get("model"):
        raise UserError(
            f"{path} is a plain .keras file, saved with its own dtypes: --precision {precision} needs a "
            f"checkpoint that names its registry model (written by `bench train`); use --precision fp32"
        )
    if metadata.get("model"):
        model = ckpt.rebuild(metadata, aux_head=True, precision=precision)
        ckpt.load_weights(model, path)
    else:
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for unreadable or foreign files
            raise UserError(f"cannot load {path} as a Keras model ({type(exc).__name__}: {exc})") from exc
        metadata = {"model": model.name, "num_classes": None, "steps": None}
    output = model.output
    if isinstance(output, dict):
        model = keras.Model(model.input, output["logits"], name=f"{model.name}_logits")
    metadata["checkpoint"] = str(path)
    metadata["precision"] = precision
    metadata["folded_bn"] = False
    if fold_bn:
        from models.inference import fold_batchnorm

        try:
            model, metadata["folded_bn"] = fold_batchnorm(model), True
        except Exception as exc:  # a plugin's layers may not round-trip through get_config
            warnings.warn(
                f"{path}: BatchNorm not folded ({type(exc).__name__}: {exc}); predicting unfolded",
                stacklevel=2,
            )
    return model, metadata


def png_bytes(array: np.ndarray) -> bytes:
    """A (H, W) uint8 array as the bytes of a single-channel 8-bit PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_png(array: np.ndarray, path: Path) -> None:
    from bench.evaluation.png import encode_png  # fast to decode: what every evaluation of them pays

    write_bytes(path, encode_png(array))


def _peak_memory() -> dict[str, float]:
    import tensorflow as tf

    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1.0 / 1024 if os.uname().sysname != "Darwin" else 1.0 / (1024 * 1024)
    stats = {"peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)}
    if tf.config.list_physical_devices("GPU"):
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        stats["peak_gpu_memory_mb"] = round(peak / 2**20, 1)
    return stats


def _check_mode(mode: str, scales: Sequence[float], crop, stride) -> None:
    if mode not in MODES:
        raise UserError(f"--mode {mode}: choose one of {', '.join(MODES)}")
    if not scales or not all(0 < s <= MAX_SCALE for s in scales):  # NaN fails both comparisons
        raise UserError(f"--scales {scales}: give scales between 0 and {MAX_SCALE:g}, e.g. 0.75,1.0,1.25")
    for name, value in (("--crop", crop), ("--stride", stride)):
        if value is not None and min(value) < 1:
            raise UserError(f"{name} {value} must be positive, e.g. 713x713")


def predict_samples(
    checkpoint,
    samples: Sequence,
    on_frame: Callable[[Any, np.ndarray, np.ndarray], None],
    *,
    mode: str = "whole",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crop: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    progress: bool = True,
    fold_bn: bool = True,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Predict every frame of `samples` (`data.cityscapes.Sample`s with an image) and hand each result to
    `on_frame(sample, train_ids, logits)` in order (train IDs (H, W) uint8, logits (H, W, C) float32);
    return the run's figures.

    The caller decides what a frame becomes (PNG files, scores, a submission zip). The figures: images/s
    over the run (decoding, inference and `on_frame`, after a warm-up frame that pays for tracing), latency
    p50/p95 (inference and arg-max), peak memory, and where it ran (device, threads, TensorFlow, precision,
    batch, frame size), with the checkpoint and the mode settings.
    """
    tf = import_tensorflow()

    from bench.engine.device import environment
    from data.normalization import InputSpec
    from data.pipeline import eval_dataset

    scales = tuple(float(s) for s in scales)
    _check_mode(mode, scales, crop, stride)
    model, metadata = load_checkpoint(checkpoint, fold_bn=fold_bn, precision=precision)
    accelerated = bool(tf.config.list_physical_devices("GPU"))
    # logits float32 whatever the policy (registry models already end in a float32 resize; plugins may not)
    forward = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), jit_compile=accelerated)
    settings = {"mode": mode, "scales": scales, "flip": flip, "crop": crop, "stride": stride}

    frames = eval_dataset(samples, with_labels=False, input_spec=InputSpec.from_metadata(metadata))
    latencies: list[float] = []
    sizes: set[tuple[int, int]] = set()
    began = None
    bar = progress_bar(len(samples), desc="predict", unit="img", enabled=progress)
    for sample, image in zip(samples, frames, strict=True):
        if began is None:  # warm-up: trace and compile on the first frame, outside the timings
            frame_logits(forward, image, **settings)
            began = time.perf_counter()
        t0 = time.perf_counter()
        logits = frame_logits(forward, image, **settings)
        train_ids = np.argmax(logits, axis=-1).astype(np.uint8)
        latencies.append(time.perf_counter() - t0)
        sizes.add(train_ids.shape)
        on_frame(sample, train_ids, logits)
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - began
    latency_ms = np.asarray(latencies) * 1000.0
    return {
        "n_images": len(samples),
        "seconds": round(seconds, 3),
        "images_per_s": round(len(samples) / seconds, 3),
        "latency_p50_ms": round(float(np.percentile(latency_ms, 50)), 2),
        "latency_p95_ms": round(float(np.percentile(latency_ms, 95)), 2),
        **_peak_memory(),
        **environment(),
        "precision": precision,
        "batch": 1,
        "input_size": " ".join(f"{h}x{w}" for h, w in sorted(sizes)),
        "checkpoint": metadata["checkpoint"],
        "model": metadata.get("model"),
        "preset": metadata.get("preset"),
        "options": metadata.get("options"),
        "train_steps": metadata.get("steps"),
        "folded_bn": metadata["folded_bn"],
        "input": InputSpec.from_metadata(metadata).to_dict(),
        **settings,
    }


def _check_replaceable(folder: Path, option: str, ours: Callable[[Path], bool]) -> None:
    """Refuse (before any work) an output folder that cannot be written or holds files not ours to delete."""
    check_writable(folder, option, folder=True)
    if folder.exists():  # it is replaced by a rename in its parent folder
        check_writable(folder.parent, f"{option} {folder}: its parent folder", folder=True)
    if folder.is_dir() and any(folder.iterdir()) and not ours(folder):
        raise UserError(
            f"{option} {folder} already holds files that `bench predict` did not write: choose a new or "
            f"empty folder (predictions must be alone in theirs: every PNG in it is scored)"
        )


def _fresh_output_folders(predict_fn):
    """Run `predict_fn` writing into hidden sibling folders that replace OUT (and OUT_color) at the end."""

    @functools.wraps(predict_fn)
    def wrapper(checkpoint, dataset, split: str, out, *args: Any, colorize: bool = False, **kwargs: Any):
        out = Path(os.path.abspath(out))  # `.` and `x/..` have a name to rename
        color_dir = out.with_name(f"{out.name}_color")
        _check_replaceable(out, "--out", lambda f: (f / STATS_NAME).is_file())
        if colorize:
            _check_replaceable(
                color_dir,
                "--colorize folder",
                lambda f: all(p.name.endswith("_color.png") for p in f.iterdir()),
            )
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(replaced_folder(out))
            tmp_color = stack.enter_context(replaced_folder(color_dir)) if colorize else None
            try:
                return predict_fn(
                    checkpoint, dataset, split, tmp, *args, colorize=colorize, color_out=tmp_color, **kwargs
                )
            except OSError as exc:
                written = exc.filename and Path(str(exc.filename)).parent in (tmp, tmp_color)
                if written or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
                    raise UserError(
                        f"cannot write predictions under {out.parent} ({exc.strerror or exc}): free space "
                        f"or choose another --out"
                    ) from exc
                raise

    return wrapper


@_fresh_output_folders
def predict(
    checkpoint,
    dataset,
    split: str,
    out,
    *,
    mode: str = "whole",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crop: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    colorize: bool = False,
    progress: bool = True,
    limit: int | None = None,
    fold_bn: bool = True,
    color_out=None,
    save_logits: str | os.PathLike | None = None,
    precision: str = DEFAULT_PRECISION,
    evaluator=None,
    write: bool | Collection[str] = True,
) -> dict[str, Any]:
    """Write label-ID PNGs of `split` into `out`; return (and write to `out/predict_stats.json`) the speed
    and memory figures of the run. `limit` predicts only the first frames (quick checks); `fold_bn` merges
    BatchNorm into the convolutions and `precision` picks fp32 or bf16 (see `load_checkpoint`). OUT and
    OUT_color (`color_out`) are replaced whole at the end (see the module docstring). `save_logits` also
    writes each frame's float32 logits (H, W, classes in train-ID order) as `{key}_logits.npy` there (parity
    checks, ensembling).

    `evaluator` (a `bench.evaluation.streaming.StreamingEvaluator`) scores every frame from the array just
    predicted, no PNG round trip; read its scores with `evaluator.evaluate()` afterwards. `write`: True
    writes every frame's PNG, False none, a collection of frame keys (`{city}_{seq}_{frame}`) only those.
    """
    from data.cityscapes import list_samples
    from data.labels import colorize as palette
    from data.labels import to_label_ids

    _check_mode(mode, tuple(float(s) for s in scales), crop, stride)
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit} must be at least 1")
    samples = list_samples(dataset, split, require_images=True)[:limit]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    color_dir = Path(color_out) if color_out is not None else out.with_name(f"{out.name}_color")
    if colorize:
        color_dir.mkdir(parents=True, exist_ok=True)
    if save_logits is not None:
        Path(save_logits).mkdir(parents=True, exist_ok=True)
    keys = None if isinstance(write, bool) else frozenset(write)

    def on_frame(sample, train_ids: np.ndarray, logits: np.ndarray) -> None:
        label_ids = to_label_ids(train_ids)
        if evaluator is not None:
            evaluator.process(sample, label_ids)
        if save_logits is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(logits, np.float32))
            write_bytes(Path(save_logits) / f"{sample.key}_logits.npy", buffer.getvalue())
        if write is True or (keys is not None and sample.key in keys):
            _write_png(label_ids, out / f"{sample.key}_leftImg8bit.png")
        if colorize:
            _write_png(palette(train_ids), color_dir / f"{sample.key}_color.png")

    stats = predict_samples(
        checkpoint,
        samples,
        on_frame,
        mode=mode,
        scales=scales,
        flip=flip,
        crop=crop,
        stride=stride,
        progress=progress,
        fold_bn=fold_bn,
        precision=precision,
    )
    stats = {**stats, "split": split}
    write_text(out / STATS_NAME, json.dumps(stats, indent=2) + "\n")
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help=".keras checkpoint, a training --out folder (its latest checkpoint) or a PyTorch .pth "
        "(converted once, cached)",
    )
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="split to predict (default val)")
    parser.add_argument("--out", required=True, help="folder for the label-ID PNGs")
    parser.add_argument("--mode", choices=MODES, default="whole", help="inference mode (default whole)")
    parser.add_argument(
        "--scales",
        type=parse_scales,
        default=None,
        help=f"multiscale: comma-separated scales (default {','.join(map(str, DEFAULT_SCALES))})",
    )
    parser.add_argument("--flip", action="store_true", help="also predict the mirrored frame and average")
    parser.add_argument(
        "--crop", type=size, default=None, help="slide window HxW (default 713x713, PSPNet's)"
    )
    parser.add_argument("--stride", type=size, default=None, help="slide stride HxW (default 2/3 of crop)")
    parser.add_argument("--colorize", action="store_true", help="also write palette PNGs to OUT_color/")
    parser.add_argument(
        "--save-logits",
        default=None,
        metavar="DIR",
        help="also write float32 logits as DIR/{frame}_logits.npy",
    )
    parser.add_argument("--limit", type=int, default=None, help="predict only the first N frames")
    parser.add_argument(
        "--no-fold-bn",
        action="store_true",
        help="keep BatchNorm layers (default: fold them into the convolutions)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULT_PRECISION,
        help=f"fp32, or bf16 compute with float32 weights and logits (default {DEFAULT_PRECISION})",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="also score every frame against the split's GT as it is predicted and print the table",
    )
    parser.add_argument("--json", default=None, help="with --evaluate: write the scores here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.json and not args.evaluate:
        raise UserError("--json writes the scores of --evaluate: add --evaluate")
    scales = scales_for(args.mode, args.scales)
    evaluator = None
    if args.evaluate:
        from bench.evaluation.streaming import StreamingEvaluator

        evaluator = StreamingEvaluator()
    stats = predict(
        args.checkpoint,
        args.dataset,
        args.split,
        args.out,
        mode=args.mode,
        scales=scales,
        flip=args.flip,
        crop=args.crop,
        stride=args.stride,
        colorize=args.colorize,
        progress=not args.no_progress,
        limit=args.limit,
        fold_bn=not args.no_fold_bn,
        save_logits=args.save_logits,
        precision=args.precision,
        evaluator=evaluator,
    )
    print(
        f"wrote {stats['n_images']} predictions to {args.out}: {stats['images_per_s']:.2f} images/s, "
        f"latency p50 {stats['latency_p50_ms']:.0f} ms, p95 {stats['latency_p95_ms']:.0f} ms, "
        f"peak memory {stats['peak_memory_mb']:.0f} MB ({stats['device']}, {stats['threads']} threads, "
        f"{stats['precision']})"
    )
    if evaluator is not None:
        from bench.evaluation.command import format_result

        result = evaluator.evaluate()
        evaluator.close()
        print(format_result(result), end="")
        for warning in result.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        if args.json:
            print(f"wrote {result.write_json(args.json)}")
    return 0
