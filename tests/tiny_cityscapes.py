"""A few tiny frames in the exact Cityscapes layout, for tests that must not wait for a generator.

Scenes are piecewise constant (sky, building, road, a car, a void strip) with per-class colours and mild
noise, so a tiny model can learn them in a few dozen steps and tests can check alignment by colour.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from data.labels import name2label

CLASSES = ("sky", "building", "road", "car", "unlabeled")
LABEL_ID = {name: name2label[name].id for name in CLASSES}
COLOR = {
    "sky": (70, 130, 180),
    "building": (120, 70, 60),
    "road": (128, 64, 128),
    "car": (20, 20, 160),
    "unlabeled": (0, 0, 0),
}


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
    """Write leftImg8bit RGB, gtFine labelIds (8-bit) and instanceIds (16-bit) PNGs; return the root."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        img_dir = root / "leftImg8bit" / split / city
        gt_dir = root / "gtFine" / split / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            stem = f"{city}_{i:06d}_000019"
            image, label = scene(size, rng)
            instances = label.astype(np.uint16)
            instances[label == LABEL_ID["car"]] = LABEL_ID["car"] * 1000
            Image.fromarray(image).save(img_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(label).save(gt_dir / f"{stem}_gtFine_labelIds.png")
            Image.fromarray(instances).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
            polygons = {"imgHeight": size[0], "imgWidth": size[1], "objects": []}
            (gt_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps(polygons))
    return root
