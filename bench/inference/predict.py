"""`python -m bench predict`: a checkpoint -> one label-ID PNG per frame, in the official submission format.

`write_predictions(model, samples, out, settings)` is the library form (`bench run` uses it too): the
prediction loop (bench/inference/loop.py) feeding the file sinks (bench/inference/sinks.py) into folders that
`output_folders` prepares.

Files are `OUT/{city}_{seq}_{frame}_leftImg8bit.png`, single-channel 8-bit label IDs (what
cityscapesScripts and `bench evaluate` read). `--colorize` writes palette images to `OUT/color/` named
`color_{key}.png`: cityscapesScripts matches every PNG under the prediction folder whose name *starts* with
`{city}_{seq}_{frame}`, so the prefix keeps them from being taken for predictions. `--dataset` may be a
Cityscapes root (with or without `gtFine/`), a plain folder of images or one image
(bench/inference/inputs.py).
Two runs into one OUT at once are refused (a lock beside OUT, as training folders have).

Modes (logits are averaged, then the arg-max is taken):
- whole: the full frame in one forward pass;
- slide: windows of `crop` every `stride` pixels (default: 2/3 of the crop, i.e. 1/3 overlap), the last
  window of a row/column flush with the border, windows clipped to frames smaller than the crop (as in
  mmsegmentation), overlapping logits averaged;
- multiscale: the frame resized by each of `scales` (bilinear), each scale predicted whole (or by sliding
  windows when `crop` is given), logits resized back to the frame and averaged.
`flip` adds the mirrored frame to any mode.

Stats (also written to `OUT/predict_stats.json`): the loop's figures (images/s, latency, peak memory,
where it ran; bench/inference/loop.py) and the split.

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
import json
import os
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.arguments import (
    add_dataset_format_argument,
    add_inference_arguments,
    add_weights_dir_argument,
    inference_settings,
)
from bench.common.atomic import check_writable, exclusive, replaced_folder, write_text
from bench.common.numbers import count
from bench.evaluation.sinks import add_quality_arguments, quality_settings, with_quality
from bench.inference.loop import Predicted, predict_frames
from bench.inference.sinks import ColourPngs, LabelPngs, LogitsFiles, Sink
from data.errors import UserError
from models.inference_modes import DEFAULT_SETTINGS, InferenceSettings

STATS_NAME = "predict_stats.json"


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


COLOUR_FOLDER = "color"  # OUT/color/color_{key}.png (see the module docstring)


def check_output_folders(out: str | os.PathLike, *, colorize: bool = False) -> None:
    """Refuse, before any work, an OUT that cannot be replaced (see the module docstring)."""
    out = Path(os.path.abspath(out))  # `.` and `x/..` have a name to rename
    _check_replaceable(out, "--out", lambda f: (f / STATS_NAME).is_file())


@contextlib.contextmanager
def output_folders(out: str | os.PathLike, *, colorize: bool = False) -> Iterator[tuple[Path, Path | None]]:
    """(hidden folder for OUT, its `color/` subfolder or None): the folder replaces OUT when the block ends
    without an error; an error leaves OUT as it was. A full disk is a UserError; another run writing the
    same OUT at the same time is refused (`exclusive` lock beside OUT)."""
    out = Path(os.path.abspath(out))
    check_output_folders(out, colorize=colorize)
    out.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(exclusive(out, f"prediction folder {out}"))
        tmp = stack.enter_context(replaced_folder(out))
        tmp_color = None
        if colorize:
            tmp_color = tmp / COLOUR_FOLDER
            tmp_color.mkdir()
        try:
            yield tmp, tmp_color
        except OSError as exc:
            written = exc.filename and Path(str(exc.filename)).parent in (tmp, tmp_color)
            if written or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG):
                raise UserError(
                    f"cannot write predictions under {out.parent} ({exc.strerror or exc}): free space "
                    f"or choose another --out"
                ) from exc
            raise


def write_predictions(
    model,
    samples: Sequence,
    out: str | os.PathLike,
    settings: InferenceSettings = DEFAULT_SETTINGS,
    *,
    colorize: bool = False,
    logits_dir: str | os.PathLike | None = None,
    write: bool | Collection[str] = True,
    sinks: Sequence[Sink] = (),
    split: str | None = None,
    progress: bool = True,
) -> Predicted:
    """Predict `samples` with `model` (`open_checkpoint`'s) into label-ID PNGs in `out`; the figures are
    also written to `out/predict_stats.json` (with `split`). OUT is replaced whole at the end.

    `write`: True writes every frame's PNG, False none, a collection of frame keys only those. `colorize`
    adds palette PNGs in OUT/color/, `logits_dir` each frame's float32 logits. `sinks` (e.g. a
    `StreamingEvaluator`) see every frame first; their results lead `Predicted.results`."""
    with output_folders(out, colorize=colorize) as (tmp, tmp_color):
        outputs = list(sinks)
        if logits_dir is not None:
            Path(logits_dir).mkdir(parents=True, exist_ok=True)
            outputs.append(LogitsFiles(logits_dir))
        if write is not False:
            outputs.append(LabelPngs(tmp, None if write is True else write))
        if tmp_color is not None:
            outputs.append(ColourPngs(tmp_color))
        predicted = predict_frames(model, samples, settings, outputs, progress=progress)
        stats = {**predicted.stats, **({"split": split} if split is not None else {})}
        write_text(tmp / STATS_NAME, json.dumps(stats, indent=2) + "\n")
    return Predicted(stats, predicted.results)


def logits_size_note(samples: Sequence, folder: str | os.PathLike, classes: int = 19) -> str:
    """What `--save-logits` is about to write (float32 per class and pixel: 159 MB for a 1024x2048 frame),
    refused up front when the disk under `folder` has not that much space."""
    import shutil

    from data.pipeline import frame_size

    h, w = frame_size(samples[0].image)
    per_frame = h * w * classes * 4
    total = per_frame * len(samples)
    probe = Path(os.path.abspath(folder))
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if total > free:
        raise UserError(
            f"--save-logits {folder} needs {total / 1e9:.1f} GB ({per_frame / 1e6:.0f} MB a frame) and "
            f"{probe} has {free / 1e9:.1f} GB free: use --limit, another folder, or leave out --save-logits"
        )
    return (
        f"note: --save-logits writes {per_frame / 1e6:.0f} MB a frame ({classes} float32 logits at {h}x{w}): "
        f"{total / 1e9:.2f} GB for {len(samples)} frame{'s' if len(samples) != 1 else ''} into {folder}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help=".keras checkpoint, a training --out folder (its latest checkpoint), a PyTorch .pth "
        "(converted once, cached), a LiteRT .tflite, an .onnx or OpenVINO .xml (with its recipe: README "
        "'Benchmark your own model') or a published weights name (`bench weights`)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="Cityscapes root (gtFine/ only needed with --evaluate), an ACDC, Dark Zurich, Foggy Cityscapes "
        "or BDD100K root (its labelled frames), a folder of images (recursive) or one image "
        "(default: $CITYSCAPES_DATASET)",
    )
    add_dataset_format_argument(parser)
    parser.add_argument("--split", default="val", help="split of a Cityscapes root to predict (default val)")
    parser.add_argument("--out", required=True, help="folder for the label-ID PNGs")
    add_weights_dir_argument(parser)
    add_inference_arguments(parser)
    parser.add_argument(
        "--colorize", action="store_true", help="also write palette PNGs to OUT/color/color_{frame}.png"
    )
    parser.add_argument(
        "--save-logits",
        default=None,
        metavar="DIR",
        help="also write float32 logits as DIR/{frame}_logits.npy (159 MB a 1024x2048 frame)",
    )
    parser.add_argument("--limit", type=int, default=None, help="predict only the first N frames")
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="also score every frame against the split's GT as it is predicted and print the table",
    )
    parser.add_argument("--json", default=None, help="with --evaluate: write the scores here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_quality_arguments(parser)  # with --evaluate: Boundary IoU and calibration beside the IoU


def run(args: argparse.Namespace) -> int:
    from bench.common.tensorflow_import import import_tensorflow
    from bench.inference.fastest import open_from_arguments
    from bench.inference.inputs import frames_to_predict

    if args.json and not args.evaluate:
        raise UserError("--json writes the scores of --evaluate: add --evaluate")
    if args.temperature is not None and not args.evaluate:
        raise UserError("--temperature is applied when scoring calibration: add --evaluate")
    quality = quality_settings(args)
    settings = inference_settings(args)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit} must be at least 1")
    check_output_folders(args.out, colorize=args.colorize)
    if args.save_logits:  # every output is checked before the first frame, not after the last
        check_writable(args.save_logits, "--save-logits folder", folder=True)
    if args.json:
        check_writable(args.json, "--json file", folder=False)
    samples = frames_to_predict(args.dataset, args.split, evaluate=args.evaluate, fmt=args.dataset_format)[
        : args.limit
    ]
    if args.save_logits:
        print(logits_size_note(samples, args.save_logits), file=sys.stderr)
    import_tensorflow()
    model = open_from_arguments(args, settings)
    with contextlib.ExitStack() as stack:
        sinks: list[Any] = []
        if args.evaluate:
            from bench.evaluation.streaming import StreamingEvaluator

            sinks.append(stack.enter_context(StreamingEvaluator()))
            sinks += [stack.enter_context(sink) for sink in quality.sinks()]
        predicted = write_predictions(
            model,
            samples,
            args.out,
            settings,
            colorize=args.colorize,
            logits_dir=args.save_logits,
            sinks=sinks,
            split=args.split,
            progress=not args.no_progress,
        )
    stats = predicted.stats
    print(
        f"wrote {count(stats['n_images'], 'prediction')} to {args.out}: "
        f"{stats['images_per_s']:.2f} images/s after the warm-up frame, "
        f"latency p50 {stats['latency_p50_ms']:.0f} ms, p95 {stats['latency_p95_ms']:.0f} ms, "
        f"peak memory {stats['peak_memory_mb']:.0f} MB ({stats['device']}, {stats['threads']} threads, "
        f"{stats['precision']}{'' if stats['runtime'] == 'tensorflow' else ', ' + stats['runtime']})"
    )
    if args.evaluate:
        from bench.evaluation.command import format_result

        result = with_quality(predicted.results[0], predicted.results[1 : len(sinks)])
        print(format_result(result), end="")
        for warning in result.warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
        if args.json:
            print(f"wrote {result.write_json(args.json)}")
    return 0
