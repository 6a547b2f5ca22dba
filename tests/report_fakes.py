"""Stand-ins for the reporting tests: an EvaluationResult-like object and a tiny Cityscapes-layout folder.

The reporting code only reads attributes of the evaluator's result, so a small dataclass exercises it
without the evaluator; the tiny dataset has just what the sample grid needs (image, labelIds, prediction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from data.labels import CLASS_NAMES, name2label


@dataclass
class FakeResult:
    """Fractions in [0, 1] like bench.evaluation.EvaluationResult; `confusion` over label IDs (34 x 34)."""

    class_iou: dict[str, float]
    iiou: float = 0.25
    category_miou: float = 0.5
    category_iiou_mean: float = 0.4
    seconds: float = 1.25
    n_images: int = 2
    confusion: np.ndarray = field(default_factory=lambda: np.arange(34 * 34).reshape(34, 34) % 7)

    @property
    def miou(self) -> float:
        values = [v for v in self.class_iou.values() if not math.isnan(v)]
        return sum(values) / len(values)


def fake_result(seed: int = 0, absent: tuple[str, ...] = ("train",)) -> FakeResult:
    """A result with distinct per-class IoUs; classes in `absent` are NaN (not in the ground truth)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.05, 0.95, len(CLASS_NAMES))
    iou = {name: float(v) for name, v in zip(CLASS_NAMES, values, strict=True)}
    for name in absent:
        iou[name] = math.nan
    return FakeResult(iou)


def tiny_cityscapes(root: Path, n: int = 2, size: tuple[int, int] = (32, 64)) -> tuple[Path, Path]:
    """`n` val frames (image + labelIds) under `root` and label-ID predictions in `root/pred`."""
    h, w = size
    pred_dir = root / "pred"
    pred_dir.mkdir(parents=True)
    road, sky, car = (name2label[n].id for n in ("road", "sky", "car"))
    for i in range(n):
        stem = f"frankfurt_000000_{i:06d}"
        img_dir, gt_dir = root / "leftImg8bit/val/frankfurt", root / "gtFine/val/frankfurt"
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        labels = np.full((h, w), sky, np.uint8)
        labels[h // 2 :] = road
        labels[h // 2 - 4 : h // 2 + 4, 8 + i : 24 + i] = car
        labels[0, :] = 0  # unlabeled: void
        Image.fromarray(labels).save(gt_dir / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(np.zeros((h, w), np.uint16)).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
        (gt_dir / f"{stem}_gtFine_polygons.json").write_text("{}")
        Image.fromarray(np.full((h, w, 3), 100 + i, np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
        pred = labels.copy()
        pred[: h // 4] = road
        Image.fromarray(pred).save(pred_dir / f"{stem}_leftImg8bit.png")
    return root, pred_dir
