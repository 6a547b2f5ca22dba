"""The worst frames of a run as pictures: image | ground truth | prediction | error map, each a thumbnail
and a full-size file in `RUN/report/`, and `RUN/report/worst.json` that lists them with their scores (what
`bench report` rebuilds the page from without the dataset).

Error map: correct pixels near white, wrong ones in the colour of the class that was predicted (cyan for
void), pixels the evaluation ignores (void GT) black. Label maps are palette PNGs (a byte a
pixel, fast compression), the photo the dataset's own file, thumbnails of it JPEG.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from bench.common import atomic
from data.labels import CLASS_NAMES, TRAIN_TO_COLOR, to_train_ids

WORST_N = 6
"""Frames shown in a run's report: the lowest per-frame mIoU first."""
THUMB_WIDTH = 320
KINDS = ("image", "gt", "pred", "error")
WORST_JSON = "worst.json"


RIGHT, IGNORED, VOID_PRED = 253, 254, 255
"""Palette indices of the error map beside the 19 class colours: right, ignored GT, a void prediction."""


def _palette() -> list[int]:
    colours = TRAIN_TO_COLOR.copy()
    colours[RIGHT], colours[IGNORED], colours[VOID_PRED] = (235, 235, 235), (0, 0, 0), (0, 255, 255)
    return colours.ravel().tolist()


PALETTE = _palette()  # of the error map
LABEL_PALETTE = TRAIN_TO_COLOR.ravel().tolist()  # of GT and prediction: 255 (void) black


def error_map(gt_train: np.ndarray, pred_train: np.ndarray) -> np.ndarray:
    """Palette indices: right pixels RIGHT (near white: no class colour), wrong ones the predicted train ID
    (its colour; a void prediction VOID_PRED, cyan), ignored GT IGNORED (black)."""
    out = np.where(pred_train == 255, VOID_PRED, pred_train).astype(np.uint8)
    out[gt_train == pred_train] = RIGHT
    out[gt_train == 255] = IGNORED
    return out


def _label_png(indices: np.ndarray, path: Path, width: int | None = None, palette=LABEL_PALETTE) -> None:
    """A palette PNG (one byte a pixel: fast to write, lossless), optionally shrunk (nearest) to `width`."""
    from PIL import Image

    image = Image.fromarray(np.asarray(indices, dtype=np.uint8), mode="P")
    image.putpalette(palette)
    if width is not None and image.width > width:
        image = image.resize(
            (width, max(1, round(image.height * width / image.width))), Image.Resampling.NEAREST
        )
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _photo(source: Path | np.ndarray, full: Path, thumb: Path) -> None:
    """The full-size photo (the dataset's file copied as it is, or an array as PNG) and a JPEG thumbnail."""
    from PIL import Image

    if isinstance(source, np.ndarray):
        image = Image.fromarray(source)
        image.save(full, format="PNG", compress_level=1)
    else:
        shutil.copyfile(source, full)
        image = Image.open(source).convert("RGB")
    if image.width > THUMB_WIDTH:
        image = image.resize((THUMB_WIDTH, max(1, round(image.height * THUMB_WIDTH / image.width))))
    image.save(thumb, format="JPEG", quality=85)


def write_frame_images(
    out_dir: Path, key: str, image: Path | np.ndarray | None, gt_label_ids: np.ndarray, pred_train: np.ndarray
) -> dict[str, dict[str, str]]:
    """The four pictures of one frame (and their thumbnails) in `out_dir`; paths relative to its parent."""
    gt_train = to_train_ids(gt_label_ids)
    files: dict[str, dict[str, str]] = {}

    def name(kind: str, ext: str) -> tuple[Path, Path]:
        full, thumb = out_dir / f"{key}_{kind}.{ext}", out_dir / f"{key}_{kind}_thumb.{ext}"
        files[kind] = {"full": f"{out_dir.name}/{full.name}", "thumb": f"{out_dir.name}/{thumb.name}"}
        return full, thumb

    if image is not None:
        full, thumb = name(
            "image", "png" if isinstance(image, np.ndarray) else Path(image).suffix[1:] or "png"
        )
        thumb = thumb.with_suffix(".jpg")
        files["image"]["thumb"] = f"{out_dir.name}/{thumb.name}"
        _photo(image, full, thumb)
    errors = error_map(gt_train, pred_train)
    for kind, indices, palette in (
        ("gt", gt_train, LABEL_PALETTE),
        ("pred", pred_train, LABEL_PALETTE),
        ("error", errors, PALETTE),
    ):
        full, thumb = name(kind, "png")
        _label_png(indices, full, palette=palette)
        _label_png(indices, thumb, THUMB_WIDTH, palette=palette)
    return files


def write_worst_frames(
    run_dir: str | os.PathLike,
    frames,
    load: Callable[[str], tuple[Path | np.ndarray | None, np.ndarray, np.ndarray] | None],
    n: int = WORST_N,
) -> Path:
    """Pictures of the `n` worst frames of `frames` (a FrameScores) and `report/worst.json`.

    `load(key)` gives (image file or RGB array or None, GT label ids, prediction as train ids), or None
    where the prediction is not at hand (that frame is listed without pictures).
    """
    out_dir = Path(run_dir) / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    listed = []
    for i in frames.worst(n):
        key = frames.keys[i]
        arrays = load(key)
        entry = {
            "frame": key,
            "miou": _number(frames.miou[i]),
            "pixel_acc": _number(frames.pixel_acc[i]),
            "valid_pixels": int(frames.valid_pixels[i]),
            "iou": {
                name: float(v)
                for name, v in zip(CLASS_NAMES, frames.iou[i], strict=True)
                if not math.isnan(v)
            },
            "files": write_frame_images(out_dir, key, *arrays) if arrays is not None else {},
        }
        listed.append(entry)
    return atomic.write_text(out_dir / WORST_JSON, json.dumps(listed, indent=1) + "\n")


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def loader(
    samples: Sequence, predictions: Mapping[str, np.ndarray] | None = None, pred_dir=None, pred_ids="label"
) -> Callable[[str], tuple[Path | None, np.ndarray, np.ndarray] | None]:
    """`load(key)` for `write_worst_frames` (the image as the dataset's file) from the split's samples and
    predictions held in memory (train IDs, from the loop) or written as PNGs in `pred_dir` (`pred_ids`:
    what their values are)."""
    from bench.evaluation.png import read_png

    by_key = {s.key: s for s in samples}

    def load(key: str):
        sample = by_key.get(key)
        if sample is None:
            return None
        if predictions is not None and key in predictions:
            pred = np.asarray(predictions[key], dtype=np.uint8)
        elif pred_dir is not None:
            found = sorted(Path(pred_dir).rglob(f"{key}*.png"))
            if not found:
                return None
            pred = read_png(found[0], "prediction")
            pred = to_train_ids(pred) if pred_ids == "label" else pred
        else:
            return None
        image = None
        if getattr(sample, "image", None) is not None and Path(sample.image).is_file():
            image = Path(sample.image)
        return image, read_png(sample.label_ids, "ground truth"), pred

    return load
