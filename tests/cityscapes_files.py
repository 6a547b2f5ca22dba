"""Every test's writer of Cityscapes-format files (numpy + Pillow, no fixture data), in one place.

- `write_frame` writes one frame in the official layout: `gtFine/{split}/{city}/{key}_gtFine_labelIds.png`
  (8-bit), `_instanceIds.png` (16-bit), `_polygons.json`, and `leftImg8bit/.../{key}_leftImg8bit.png` (RGB)
  when an image is given; `write_pred` a prediction PNG named as the official tools expect.
- `write_dataset`: a few piecewise-constant street frames (sky, building, road, a car, a void strip) with
  per-class colours, learnable by a tiny model in a few dozen steps.
- `random_scene` / `noisy_prediction`: label maps with many instances, for the evaluator's exactness tests.
- `evaluation_result`: a real `EvaluationResult` from the real evaluator, for the reporting tests.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from data.labels import name2label

H, W = 64, 128

CLASSES = ("sky", "building", "road", "car", "unlabeled")
COLOR = {
    "sky": (70, 130, 180),
    "building": (120, 70, 60),
    "road": (128, 64, 128),
    "car": (20, 20, 160),
    "unlabeled": (0, 0, 0),
}


def lid(name: str) -> int:
    """Label id of a class name (never retype the table)."""
    return name2label[name].id


LABEL_ID = {name: lid(name) for name in CLASSES}


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_frame(
    root: Path,
    key: str,
    labels: np.ndarray,
    instances: np.ndarray | None = None,
    *,
    image: np.ndarray | None = None,
    split: str = "val",
    polygons: bool = True,
) -> Path:
    """One frame `{city}_{seq}_{frame}` in the Cityscapes layout; instances default to the label ids.

    Returns the labelIds path. Without `image` only `gtFine/` is written (plus an empty `leftImg8bit/{split}`
    folder, as a download of the fine annotations next to an image folder would have).
    """
    city = key.split("_")[0]
    folder = root / "gtFine" / split / city
    if instances is None:
        instances = labels.astype(np.uint16)
    write_png(folder / f"{key}_gtFine_instanceIds.png", instances.astype(np.uint16))
    if polygons:
        folder.mkdir(parents=True, exist_ok=True)
        size = {"imgHeight": int(labels.shape[0]), "imgWidth": int(labels.shape[1]), "objects": []}
        (folder / f"{key}_gtFine_polygons.json").write_text(json.dumps(size))
    if image is not None:
        write_png(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", image)
    else:
        (root / "leftImg8bit" / split).mkdir(parents=True, exist_ok=True)
    return write_png(folder / f"{key}_gtFine_labelIds.png", labels.astype(np.uint8))


def write_gt(
    root: Path, key: str, labels: np.ndarray, instances: np.ndarray | None = None, split: str = "val"
) -> Path:
    """GT files of one frame, no image (what the evaluator reads)."""
    return write_frame(root, key, labels, instances, split=split, polygons=False)


def write_pred(pred_dir: Path, key: str, pred: np.ndarray) -> Path:
    return write_png(pred_dir / f"{key}_leftImg8bit.png", pred)


def scene(size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, labelIds uint8) of one frame: layout varies with rng, colours are fixed per class."""
    h, w = size
    names = np.empty((h, w), dtype=object)
    horizon = int(h * rng.uniform(0.3, 0.45))
    roofline = int(horizon * rng.uniform(0.3, 0.7))
    names[:] = "road"
    names[:horizon] = "building"
    names[:roofline] = "sky"
    cy, cx = int(h * rng.uniform(0.55, 0.7)), int(w * rng.uniform(0.2, 0.6))
    names[cy : cy + h // 5, cx : cx + w // 4] = "car"
    names[h - max(2, h // 16) :] = "unlabeled"  # ego-vehicle-like void strip at the bottom
    image = np.zeros((h, w, 3), dtype=np.float32)
    label = np.zeros((h, w), dtype=np.uint8)
    for name in CLASSES:
        mask = names == name
        image[mask] = COLOR[name]
        label[mask] = LABEL_ID[name]
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_dataset(
    root: Path,
    *,
    train: int = 4,
    val: int = 2,
    size: tuple[int, int] = (64, 128),
    seed: int = 0,
    city: str = "testcity",
) -> Path:
    """`train` + `val` frames of `scene` (images, labelIds, instanceIds with one car instance); the root."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        for i in range(count):
            image, label = scene(size, rng)
            instances = label.astype(np.uint16)
            instances[label == LABEL_ID["car"]] = LABEL_ID["car"] * 1000
            write_frame(root, f"{city}_{i:06d}_000019", label, instances, image=image, split=split)
    return root


def random_scene(
    rng: np.random.Generator, n_instances: int = 30, h: int = H, w: int = W
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of random label ids (void and ignored ids included) with many instance rectangles on top.

    Instances of every instance class (caravan and trailer too), some of them group labels (no instance id).
    """
    block = 8
    labels = rng.integers(0, 34, (h // block, w // block)).astype(np.uint8)
    labels = np.kron(labels, np.ones((block, block), np.uint8))
    instances = labels.astype(np.uint16)
    names = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "caravan", "trailer"]
    counters: dict[int, int] = {}
    for _ in range(n_instances):
        label = lid(names[rng.integers(len(names))])
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        hh, ww = rng.integers(2, max(3, h // 3)), rng.integers(2, max(3, w // 4))
        labels[y : y + hh, x : x + ww] = label
        if rng.random() < 0.15:  # a group label: label id in the instance file, no instance
            instances[y : y + hh, x : x + ww] = label
        else:
            k = counters.get(label, 0)
            counters[label] = k + 1
            instances[y : y + hh, x : x + ww] = label * 1000 + k
    return labels, instances


def noisy_prediction(rng: np.random.Generator, labels: np.ndarray, error_rate: float = 0.3) -> np.ndarray:
    """GT label ids with a fraction of pixels replaced by random label ids (void ids included)."""
    pred = labels.copy()
    wrong = rng.random(labels.shape) < error_rate
    pred[wrong] = rng.integers(0, 34, int(wrong.sum()))
    return pred


def evaluation_result(seed: int = 0, absent: tuple[str, ...] = ("train",), n_images: int = 2):
    """A real EvaluationResult: the evaluator run on `n_images` random scenes and noisy predictions.

    Classes in `absent` appear in neither GT nor predictions (their IoU is NaN).
    """
    from bench.evaluation import evaluate

    rng = np.random.default_rng(seed)
    replacement = lid("road")
    with tempfile.TemporaryDirectory(prefix="result-") as tmp:
        root = Path(tmp)
        for i in range(n_images):
            labels, instances = random_scene(rng)
            pred = noisy_prediction(rng, labels)
            for name in absent:
                gone = labels == lid(name)
                labels[gone], instances[gone] = replacement, replacement
                pred[pred == lid(name)] = replacement
            key = f"ulm_{i:06d}_000019"
            write_gt(root / "gt", key, labels, instances)
            write_pred(root / "pred", key, pred)
        return evaluate(root / "gt", "val", root / "pred", workers=1)


def tiny_cityscapes(root: Path, n: int = 2, size: tuple[int, int] = (32, 64)) -> tuple[Path, Path]:
    """`n` val frames (image, labelIds, instanceIds) under `root` and label-ID predictions in `root/pred`."""
    h, w = size
    road, sky, car = lid("road"), lid("sky"), lid("car")
    for i in range(n):
        key = f"frankfurt_000000_{i:06d}"
        labels = np.full((h, w), sky, np.uint8)
        labels[h // 2 :] = road
        labels[h // 2 - 4 : h // 2 + 4, 8 + i : 24 + i] = car
        labels[0, :] = 0  # unlabeled: void
        image = np.full((h, w, 3), 100 + i, np.uint8)
        write_frame(root, key, labels, np.zeros((h, w), np.uint16), image=image)
        pred = labels.copy()
        pred[: h // 4] = road
        write_pred(root / "pred", key, pred)
    return root, root / "pred"
