"""Hand-built Cityscapes-layout files for the evaluator tests (tiny, numpy + Pillow, no fixture data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from data.labels import name2label

H, W = 64, 128


def lid(name: str) -> int:
    """Label id of a class name (never retype the table)."""
    return name2label[name].id


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_gt(
    root: Path, key: str, labels: np.ndarray, instances: np.ndarray | None = None, split: str = "val"
) -> Path:
    """Write `{key}_gtFine_labelIds.png` and `_instanceIds.png` (instances default to the label ids)."""
    city = key.split("_")[0]
    folder = root / "gtFine" / split / city
    if instances is None:
        instances = labels.astype(np.uint16)
    write_png(folder / f"{key}_gtFine_instanceIds.png", instances.astype(np.uint16))
    (root / "leftImg8bit" / split).mkdir(parents=True, exist_ok=True)
    return write_png(folder / f"{key}_gtFine_labelIds.png", labels.astype(np.uint8))


def write_pred(pred_dir: Path, key: str, pred: np.ndarray) -> Path:
    return write_png(pred_dir / f"{key}_leftImg8bit.png", pred)


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
