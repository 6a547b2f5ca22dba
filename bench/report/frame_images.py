"""The worst frames of a run as pictures: image | ground truth | prediction | error map, each a thumbnail
and a full-size file in `RUN/report/`, and `RUN/report/worst.json` that lists them with their scores (what
`bench report` rebuilds the page from without the dataset).

Error map: correct pixels in dim grey, wrong ones in the colour of the class that was predicted (white for
void), pixels the evaluation ignores (void GT) black. Label maps are PNG (fast compression: they are
flat), photos JPEG.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from bench.common import atomic
from data.labels import CLASS_NAMES, colorize, to_train_ids

WORST_N = 6
"""Frames shown in a run's report: the lowest per-frame mIoU first."""
THUMB_WIDTH = 320
KINDS = ("image", "gt", "pred", "error")
WORST_JSON = "worst.json"


def error_map(gt_train: np.ndarray, pred_train: np.ndarray) -> np.ndarray:
    """RGB: right pixels dim grey, wrong ones in the predicted class's colour, ignored GT black."""
    out = colorize(pred_train)
    right = gt_train == pred_train
    out[right] = (70, 70, 70)
    out[~right & (pred_train == 255)] = (255, 255, 255)  # a void prediction on an evaluated pixel
    out[gt_train == 255] = (0, 0, 0)
    return out


def _save(array: np.ndarray, path: Path, *, photo: bool) -> None:
    from PIL import Image

    image = Image.fromarray(array)
    tmp = path.with_name(f".{path.name}.tmp")
    if photo:
        image.save(tmp, format="JPEG", quality=85)
    else:
        image.save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _thumb(array: np.ndarray, *, photo: bool) -> np.ndarray:
    from PIL import Image

    h, w = array.shape[:2]
    if w <= THUMB_WIDTH:
        return array
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
    resample = Image.Resampling.BILINEAR if photo else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(array).resize(size, resample))


def write_frame_images(
    out_dir: Path, key: str, image: np.ndarray | None, gt_label_ids: np.ndarray, pred_train: np.ndarray
) -> dict[str, dict[str, str]]:
    """The four pictures of one frame (and their thumbnails) in `out_dir`; paths relative to its parent."""
    gt_train = to_train_ids(gt_label_ids)
    pictures = {
        "image": image,
        "gt": colorize(gt_train),
        "pred": colorize(pred_train),
        "error": error_map(gt_train, pred_train),
    }
    files: dict[str, dict[str, str]] = {}
    for kind, array in pictures.items():
        if array is None:
            continue
        photo = kind == "image"
        ext = "jpg" if photo else "png"
        full, thumb = out_dir / f"{key}_{kind}.{ext}", out_dir / f"{key}_{kind}_thumb.{ext}"
        _save(array, full, photo=photo)
        _save(_thumb(array, photo=photo), thumb, photo=photo)
        files[kind] = {"full": f"{out_dir.name}/{full.name}", "thumb": f"{out_dir.name}/{thumb.name}"}
    return files


def write_worst_frames(
    run_dir: str | os.PathLike,
    frames,
    load: Callable[[str], tuple[np.ndarray | None, np.ndarray, np.ndarray] | None],
    n: int = WORST_N,
) -> Path:
    """Pictures of the `n` worst frames of `frames` (a FrameScores) and `report/worst.json`.

    `load(key)` gives (RGB image or None, GT label ids, prediction as train ids), or None where the
    prediction is not at hand (that frame is listed without pictures).
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
) -> Callable[[str], tuple[np.ndarray | None, np.ndarray, np.ndarray] | None]:
    """`load(key)` for `write_worst_frames` from the split's samples and predictions held in memory
    (train IDs, from the loop) or written as PNGs in `pred_dir` (`pred_ids`: what their values are)."""
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
            from PIL import Image

            image = np.asarray(Image.open(sample.image).convert("RGB"))
        return image, read_png(sample.label_ids, "ground truth"), pred

    return load
