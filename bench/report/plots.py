"""PNG plots of a run: per-class IoU bars against a reference, the confusion matrix, sample predictions.

matplotlib is imported lazily and used through its object API (`Figure` + Agg canvas): no pyplot global
state, no display needed. Figures have fixed sizes in inches and a fixed dpi and are saved without tight
bounding boxes, so every PNG has a predictable pixel size. Each file is written atomically.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import atomic
from bench.common.numbers import to_float
from data.labels import CLASS_NAMES, LABEL_TO_TRAIN, NUM_CLASSES, SHORT_NAMES, colorize

DPI = 100
BARS_SIZE = (12.0, 4.5)  # inches -> 1200 x 450 px
CONFUSION_SIZE = (9.0, 8.0)  # -> 900 x 800 px
CURVE_SIZE = (8.0, 4.5)  # -> 800 x 450 px
RELIABILITY_SIZE = (6.0, 6.5)  # -> 600 x 650 px
RANGES_SIZE = (12.0, 5.0)  # -> 1200 x 500 px
GRID_CELL = (4.0, 2.0)  # one image cell; a grid of n rows is 1200 x (200 n + 40) px
GRID_TITLE = 0.4  # inches for the column titles
VOID = "void"


def _figure(size: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI)


def _save(fig, out: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    # No bbox_inches="tight": the pixel size must be the figure size. Metadata pinned for stable bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return atomic.write_bytes(out, buf.getvalue())


def iou_bars(
    ours: Mapping[str, Any],
    out: str | os.PathLike,
    *,
    reference: Mapping[str, Any] | None = None,
    ours_label: str = "ours",
    reference_label: str = "reference",
) -> Path:
    """Grouped bars per class (percent): ours beside the reference; mIoU of both in the legend.

    `ours` and `reference` map full class names and 'miou' to percentages; missing values draw no bar.
    """
    fig = _figure(BARS_SIZE)
    ax = fig.add_axes((0.06, 0.2, 0.92, 0.66))
    x = np.arange(NUM_CLASSES)

    def values(row: Mapping[str, Any]) -> np.ndarray:
        return np.array([to_float(row.get(c)) for c in CLASS_NAMES])

    width = 0.4 if reference is not None else 0.7
    mine = values(ours)
    offset = -width / 2 if reference is not None else 0.0
    ax.bar(x + offset, mine, width, label=f"{ours_label} (mIoU {_fmt(ours.get('miou'))})", color="#1f77b4")
    for i in np.flatnonzero(np.isnan(mine)):  # a class absent from our ground truth: say so, not a 0 bar
        ax.text(x[i] + offset, 1.5, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    if reference is not None:
        ax.bar(
            x + width / 2,
            values(reference),
            width,
            label=f"{reference_label} (mIoU {_fmt(reference.get('miou'))})",
            color="#bbbbbb",
        )
    ax.set_xticks(x, SHORT_NAMES, rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("IoU (%)")
    ax.set_xlim(-0.6, NUM_CLASSES - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 1.01),
        fontsize=8,
        frameon=False,
        ncols=2 if reference is not None else 1,
    )
    fig.text(0.5, 0.97, "Per-class IoU", ha="center", va="top", fontsize=10)
    return _save(fig, out)


def leaderboard_ranges(
    ours: Mapping[str, Any], board, out: str | os.PathLike, *, ours_label: str = "ours"
) -> Path:
    """Per class and for mIoU: the published range (min-max bar), a dot per published method, our value.

    `board` is a leaderboard DataFrame (bench/report/leaderboard.py); a class no source gives has no bar,
    a class our row lacks no marker ('n/a').
    """
    keys = [*CLASS_NAMES, "miou"]
    fig = _figure(RANGES_SIZE)
    ax = fig.add_axes((0.06, 0.18, 0.92, 0.68))
    x = np.arange(len(keys), dtype=float)
    x[-1] += 0.6  # mIoU apart from the classes
    for xi, key in zip(x, keys, strict=True):
        values = board[key].dropna().to_numpy(dtype=float)
        if len(values):
            ax.vlines(xi, values.min(), values.max(), color="#cccccc", linewidth=9, zorder=1)
            ax.scatter(np.full(len(values), xi), values, s=9, color="#555555", zorder=2)
    mine = np.array([to_float(ours.get(k)) for k in keys])
    ax.scatter(x, mine, s=60, marker="D", color="#1f77b4", zorder=3, label=f"{ours_label}")
    for i in np.flatnonzero(np.isnan(mine)):
        ax.text(x[i], 1.5, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.scatter([], [], s=9, color="#555555", label="published (one dot per method)")
    ax.set_xticks(x, [*SHORT_NAMES, "mIoU"], rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.6, x[-1] + 0.6)
    ax.set_ylabel("IoU (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.01), fontsize=8, frameon=False, ncols=2)
    title = "Per-class IoU among published Cityscapes test results"
    fig.text(0.5, 0.97, title, ha="center", va="top", fontsize=10)
    return _save(fig, out)


def miou_curve(
    steps: Sequence[int],
    miou: Sequence[float],
    out: str | os.PathLike,
    *,
    target: float | None = None,
    title: str = "Validation mIoU during training",
) -> Path:
    """Validation mIoU (percent) against training step, with the recipe's published target if any."""
    fig = _figure(CURVE_SIZE)
    ax = fig.add_axes((0.09, 0.13, 0.88, 0.75))
    values = np.array([to_float(v) for v in miou])
    ax.plot(list(steps), values, marker="o", color="#1f77b4", label="val mIoU")
    if len(values) and np.isfinite(values).any():
        best = int(np.nanargmax(values))
        ax.annotate(
            f"best {values[best]:.1f}",
            (steps[best], values[best]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    if target is not None:
        ax.axhline(target, color="#bbbbbb", linestyle="--", label=f"published {target:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("mIoU (%)")
    seen = values[np.isfinite(values)]
    # Room above the best value; the whole 0-100 range when a published target is drawn.
    ax.set_ylim(
        0, 100.0 if target is not None or not len(seen) else min(100.0, 1.2 * float(seen.max()) + 1.0)
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.text(0.5, 0.97, title, ha="center", va="top", fontsize=10)
    return _save(fig, out)


def reliability_diagram(
    bins: Sequence[Mapping[str, Any]],
    out: str | os.PathLike,
    *,
    after: Sequence[Mapping[str, Any]] | None = None,
    title: str = "Reliability (top-1, pixels)",
    note: str = "",
) -> Path:
    """Accuracy against confidence per bin (bars, the gap to the diagonal shaded), pixel share per bin below.

    `bins` (and `after`, the same after temperature scaling, drawn as a line) hold dicts with low, high,
    count, accuracy, confidence (`bench.evaluation.calibration.bin_table`); empty bins draw nothing.
    """
    fig = _figure(RELIABILITY_SIZE)
    ax = fig.add_axes((0.13, 0.36, 0.82, 0.56))
    share_ax = fig.add_axes((0.13, 0.08, 0.82, 0.2))
    total = sum(int(b["count"]) for b in bins) or 1
    shown = [b for b in bins if int(b["count"]) and float(b["high"]) > float(b["low"])]
    ones = [b for b in bins if int(b["count"]) and float(b["high"]) == float(b["low"])]  # confidence 1.0
    lefts = [float(b["low"]) for b in shown]
    widths = [float(b["high"]) - float(b["low"]) for b in shown]
    acc = [float(b["accuracy"]) for b in shown]
    conf = [float(b["confidence"]) for b in shown]
    ax.bar(lefts, acc, widths, align="edge", color="#1f77b4", edgecolor="white", label="accuracy")
    ax.bar(
        lefts,
        [c - a for c, a in zip(conf, acc, strict=True)],
        widths,
        bottom=acc,
        align="edge",
        color="#d62728",
        alpha=0.3,
        label="gap to confidence",
    )
    for b in ones:
        ax.plot([1.0], [float(b["accuracy"])], marker="s", color="#1f77b4", label="confidence = 1.0")
    if after:
        kept = [b for b in after if int(b["count"])]
        ax.plot(
            [float(b["confidence"]) for b in kept],
            [float(b["accuracy"]) for b in kept],
            marker="o",
            markersize=3,
            color="#2ca02c",
            label="after temperature",
        )
    ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    share_ax.bar(
        [float(b["low"]) for b in bins if int(b["count"])],
        [int(b["count"]) / total for b in bins if int(b["count"])],
        [max(float(b["high"]) - float(b["low"]), 0.01) for b in bins if int(b["count"])],
        align="edge",
        color="#7f7f7f",
    )
    share_ax.set_xlim(0, 1.02)
    share_ax.set_xlabel("confidence")
    share_ax.set_ylabel("pixels")
    fig.text(0.5, 0.975, title, ha="center", va="top", fontsize=10)
    if note:
        fig.text(0.5, 0.945, note, ha="center", va="top", fontsize=8)
    return _save(fig, out)


def train_confusion(confusion: np.ndarray) -> np.ndarray:
    """A (19, 20) count matrix over train IDs from the evaluator's confusion, last column = void.

    Rows are ground truth, columns predictions. Accepted inputs: (19, 19) train IDs; (19, 20) or (20, 20)
    train IDs with void/ignore last (its row dropped: void ground truth is not evaluated); or label IDs,
    (n, n) with n >= 34, mapped through the cityscapesscripts LUT (ignored GT rows dropped, predictions of
    ignored IDs counted as void, which cityscapesScripts scores as false negatives).
    """
    m = np.asarray(confusion, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"confusion matrix must be 2-D, got shape {m.shape}")
    rows, cols = m.shape
    out = np.zeros((NUM_CLASSES, NUM_CLASSES + 1))
    if (rows, cols) == (NUM_CLASSES, NUM_CLASSES):
        out[:, :NUM_CLASSES] = m
    elif rows in (NUM_CLASSES, NUM_CLASSES + 1) and cols == NUM_CLASSES + 1:
        out[:] = m[:NUM_CLASSES]
    elif rows == cols and rows >= 34:
        ids = np.arange(rows)
        train = np.where(ids < 256, LABEL_TO_TRAIN[np.minimum(ids, 255)], 255)
        col_index = np.where(train < NUM_CLASSES, train, NUM_CLASSES)
        for gt_id in np.flatnonzero(train < NUM_CLASSES):
            np.add.at(out[train[gt_id]], col_index, m[gt_id])
    else:
        raise ValueError(
            f"confusion matrix of shape {m.shape} is neither train-ID (19 or 20 wide) nor "
            f"label-ID (34 or more square)"
        )
    return out


def confusion_heatmap(confusion: np.ndarray, out: str | os.PathLike, *, title: str = "") -> Path:
    """Row-normalised confusion matrix (ground truth rows sum to 1) with a 'void' prediction column.

    Rows of classes absent from the ground truth stay blank instead of dividing by zero.
    """
    counts = train_confusion(confusion)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(totals > 0, counts / np.where(totals > 0, totals, 1), np.nan)
    fig = _figure(CONFUSION_SIZE)
    ax = fig.add_axes((0.14, 0.14, 0.72, 0.78))
    image = ax.imshow(np.ma.masked_invalid(norm), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(NUM_CLASSES + 1), [*SHORT_NAMES, VOID], rotation=90, fontsize=8)
    ax.set_yticks(np.arange(NUM_CLASSES), SHORT_NAMES, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    for i in range(NUM_CLASSES):
        if not math.isnan(norm[i, i]):
            ax.text(
                i,
                i,
                f"{norm[i, i] * 100:.0f}",
                ha="center",
                va="center",
                fontsize=6,
                color="black" if norm[i, i] > 0.5 else "white",
            )
    ax.set_title(title or "Confusion matrix (rows normalised)", fontsize=10)
    cax = fig.add_axes((0.88, 0.14, 0.025, 0.78))
    fig.colorbar(image, cax=cax)
    return _save(fig, out)


def confusion_csv(confusion: np.ndarray, out: str | os.PathLike) -> Path:
    """The (19, 20) train-ID count matrix as CSV: a header of prediction classes + void, GT class per row."""
    counts = train_confusion(confusion)
    lines = [",".join(["ground_truth", *(f'"{n}"' if "," in n else n for n in CLASS_NAMES), VOID])]
    for name, row in zip(CLASS_NAMES, counts, strict=True):
        lines.append(",".join([name, *(f"{v:.0f}" for v in row)]))
    return atomic.write_text(out, "\n".join(lines) + "\n")


def _load_train_ids(path: str | os.PathLike, ids: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        array = np.asarray(im)
    if array.ndim != 2:
        raise ValueError(f"{path} is not a single-channel label image (shape {array.shape})")
    if ids == "train":
        return array.astype(np.uint8)
    from data.labels import to_train_ids

    return to_train_ids(array)


def sample_grid(
    samples: Sequence[tuple[str | os.PathLike, str | os.PathLike, str | os.PathLike]],
    out: str | os.PathLike,
    *,
    pred_ids: str = "label",
) -> Path:
    """A grid, one row per sample: image, ground truth, prediction, colourised in the Cityscapes palette.

    `samples` holds (image, GT labelIds, prediction) paths; predictions are label IDs unless
    `pred_ids='train'`. Void/ignored pixels are black.
    """
    from PIL import Image

    if not samples:
        raise ValueError("sample_grid needs at least one (image, ground truth, prediction) triple")
    n = len(samples)
    width, height = 3 * GRID_CELL[0], n * GRID_CELL[1] + GRID_TITLE
    fig = _figure((width, height))
    for r, (image_path, gt_path, pred_path) in enumerate(samples):
        with Image.open(image_path) as im:
            image = np.asarray(im.convert("RGB"))
        panels = (
            image,
            colorize(_load_train_ids(gt_path, "label")),
            colorize(_load_train_ids(pred_path, pred_ids)),
        )
        for c, panel in enumerate(panels):
            pad = 0.04  # inches between panels
            left = (c * GRID_CELL[0] + pad) / width
            bottom = ((n - 1 - r) * GRID_CELL[1] + pad) / height
            ax = fig.add_axes(
                (left, bottom, (GRID_CELL[0] - 2 * pad) / width, (GRID_CELL[1] - 2 * pad) / height)
            )
            ax.imshow(panel, interpolation="nearest")
            ax.set_axis_off()
    for c, title in enumerate(("image", "ground truth", "prediction")):
        fig.text(
            (c + 0.5) * GRID_CELL[0] / width,
            1 - GRID_TITLE / 2 / height,
            title,
            ha="center",
            va="center",
            fontsize=10,
        )
    return _save(fig, out)


def _fmt(value: Any) -> str:
    v = to_float(value)
    return "-" if math.isnan(v) else f"{v:.1f}"
