"""Per-frame and per-city scores: where a dataset-level mIoU hides its failures.

Exact by construction: the accumulator keeps each frame's (34, 34) confusion matrix, and the dataset's
matrix is their sum, so the dataset-level numbers (cityscapesScripts') are untouched and every per-frame
number is cityscapesScripts' IoU of that frame alone. A frame's IoU is NaN for a class absent from both
its GT and its prediction (on evaluated pixels); its mIoU is the mean over the classes present. That mean
is not the dataset mIoU: the dataset pools the pixels of all frames before dividing (README, "Per-frame
scores").
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.measures import counts, per_class
from data.labels import CLASS_NAMES

CSV_FIELDS = ("frame", "city", "valid_pixels", "pixel_acc", "miou", *CLASS_NAMES)
"""frames.csv columns: scores in percent (empty where a class is in neither GT nor prediction)."""


def city_of(key: str) -> str:
    """The city of a Cityscapes frame key {city}_{seq}_{frame}."""
    return key.split("_", 1)[0]


def _scores(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(iou (N, 19), miou (N,), pixel accuracy (N,), valid pixels (N,)) of a (N, 34, 34) stack."""
    iou = per_class(stack)["iou"]
    present = ~np.isnan(iou)
    n_present = present.sum(axis=1)
    total = np.zeros(len(iou))
    for column in np.where(present, iou, 0.0).T:  # class by class, as cityscapesScripts sums its mean
        total += column
    with np.errstate(invalid="ignore", divide="ignore"):
        miou = np.where(n_present > 0, total / np.maximum(n_present, 1), np.nan)
        tp, gt, _ = counts(stack)
        valid = gt.sum(axis=1)
        acc = np.where(valid > 0, tp.sum(axis=1) / np.maximum(valid, 1), np.nan)
    return iou, miou, acc, valid.astype(np.int64)


@dataclass
class FrameScores:
    """Each frame's key and confusion matrix, in evaluation order, and the scores derived from them."""

    keys: list[str]
    confusion: np.ndarray  # (N, 34, 34) int64; sums to the dataset's matrix

    def __post_init__(self) -> None:
        self.iou, self.miou, self.pixel_acc, self.valid_pixels = _scores(self.confusion)

    def __len__(self) -> int:
        return len(self.keys)

    def cities(self) -> dict[str, np.ndarray]:
        """Each city's summed (34, 34) matrix, cities in order of first appearance."""
        out: dict[str, np.ndarray] = {}
        for key, conf in zip(self.keys, self.confusion, strict=True):
            city = city_of(key)
            if city in out:
                out[city] = out[city] + conf
            else:
                out[city] = conf.copy()
        return out

    def city_rows(self) -> list[dict[str, object]]:
        """Per city: frames, valid pixels, pixel accuracy, mIoU and IoU per class (fractions)."""
        cities = self.cities()
        if not cities:
            return []
        names = list(cities)
        iou, miou, acc, valid = _scores(np.stack([cities[c] for c in names]))
        n = {c: 0 for c in names}
        for key in self.keys:
            n[city_of(key)] += 1
        return [
            {
                "city": c,
                "frames": n[c],
                "valid_pixels": int(valid[i]),
                "pixel_acc": float(acc[i]),
                "miou": float(miou[i]),
                "iou": dict(zip(CLASS_NAMES, map(float, iou[i]), strict=True)),
            }
            for i, c in enumerate(names)
        ]

    def rows(self) -> list[dict[str, object]]:
        """Per frame: key, city, valid pixels, pixel accuracy, mIoU and IoU of the classes present."""
        out = []
        for i, key in enumerate(self.keys):
            present = {
                n: float(v) for n, v in zip(CLASS_NAMES, self.iou[i], strict=True) if not math.isnan(v)
            }
            out.append(
                {
                    "frame": key,
                    "city": city_of(key),
                    "valid_pixels": int(self.valid_pixels[i]),
                    "pixel_acc": float(self.pixel_acc[i]),
                    "miou": float(self.miou[i]),
                    "iou": present,
                }
            )
        return out

    def worst(self, n: int) -> list[int]:
        """Indices of the `n` frames of lowest mIoU (frames without valid pixels last), worst first."""
        miou = np.where(np.isnan(self.miou), np.inf, self.miou)
        order = np.argsort(miou, kind="stable")
        return [int(i) for i in order[: max(0, n)]]

    def to_dict(self) -> dict[str, object]:
        """The run JSON's `frames` and `cities` sections (NaN kept; the writer turns it into null)."""
        return {"frames": self.rows(), "cities": self.city_rows()}

    def csv_text(self) -> str:
        """frames.csv: one row a frame, scores in percent with 4 decimals, empty where undefined."""

        def pct(value: float) -> str:
            return "" if math.isnan(value) else f"{100.0 * value:.4f}"

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for i, key in enumerate(self.keys):
            writer.writerow(
                [key, city_of(key), int(self.valid_pixels[i]), pct(self.pixel_acc[i]), pct(self.miou[i])]
                + [pct(v) for v in self.iou[i]]
            )
        return buffer.getvalue()

    def write_csv(self, path: str | os.PathLike) -> Path:
        from bench.common.atomic import write_text

        return write_text(path, self.csv_text())


def format_worst(frames: FrameScores, n: int) -> str:
    """The `n` worst frames as a markdown table: mIoU, pixel accuracy and the three worst classes."""
    from bench.common.markdown import markdown_table

    rows = []
    for rank, i in enumerate(frames.worst(n), start=1):
        present = [(v, name) for name, v in zip(CLASS_NAMES, frames.iou[i], strict=True) if not math.isnan(v)]
        low = ", ".join(f"{name} {100 * v:.1f}" for v, name in sorted(present)[:3])
        rows.append(
            [
                str(rank),
                frames.keys[i],
                f"{100 * frames.miou[i]:.2f}",
                f"{100 * frames.pixel_acc[i]:.2f}",
                str(int(frames.valid_pixels[i])),
                low,
            ]
        )
    return markdown_table(
        ["#", "frame", "mIoU", "pixel acc", "valid pixels", "worst classes (IoU)"], rows, right=range(2, 5)
    )
