"""The generalization table: one row per dataset and condition (mIoU, per-class IoU, pixel accuracy, frames,
iIoU where the dataset has instance IDs, the valid-pixel mIoU where it has invalid masks), the drop against
Cityscapes val, a bar plot, and the README section between its markers."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from bench.common import atomic
from bench.evaluation.train_ids import pixel_accuracy
from bench.generalize.sweep import Unit, UnitSums, combined
from data.errors import UserError
from data.labels import CLASS_NAMES
from data.layouts import ALL

BEGIN, END = "<!-- generalize:begin -->", "<!-- generalize:end -->"
TITLES = {
    "cityscapes": "Cityscapes val",
    "acdc": "ACDC",
    "darkzurich": "Dark Zurich val",
    "foggy": "Foggy Cityscapes",
    "bdd100k": "BDD100K 10K",
}
COLUMNS = [
    "dataset",
    "condition",
    "frames",
    "miou",
    "drop",
    "pixel_accuracy",
    "iiou",
    "miou_valid",
    *CLASS_NAMES,
]
ABSENT = "absent"


def rows(sums: dict[Unit, UnitSums]) -> list[dict]:
    """Table rows in unit order, ACDC's union of conditions after its conditions; `drop` is Cityscapes
    val's mIoU minus the row's (empty without a Cityscapes row)."""
    ordered: list[tuple[Unit, UnitSums]] = list(sums.items())
    acdc = [s for u, s in ordered if u.dataset == "acdc"]
    if len(acdc) > 1:
        last = max(i for i, (u, _) in enumerate(ordered) if u.dataset == "acdc")
        ordered.insert(last + 1, (Unit("acdc", ALL), combined(acdc)))
    out = [_row(u, s) for u, s in ordered]
    clean = next((r["miou"] for r in out if r["dataset"] == "cityscapes"), None)
    for row in out:
        row["drop"] = (
            round(clean - row["miou"], 4) if clean is not None and not math.isnan(row["miou"]) else ""
        )
    return out


def _row(unit: Unit, sums: UnitSums) -> dict:
    result = sums.all.result()
    row = {
        "dataset": unit.dataset,
        "condition": unit.condition,
        "frames": sums.all.n_images,
        "miou": round(100 * result.miou, 4),
        "pixel_accuracy": round(100 * pixel_accuracy(sums.all.confusion), 4),
        "iiou": round(100 * result.iiou, 4) if sums.has_instances else ABSENT,
        "miou_valid": round(100 * sums.valid.result().miou, 4) if sums.valid is not None else "",
    }
    row.update({name: round(100 * v, 4) for name, v in result.class_iou.items()})
    return row


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.1f}"
    return str(value)


def markdown(table: list[dict], title: str) -> str:
    head = [
        "dataset",
        "condition",
        "frames",
        "mIoU",
        "drop vs Cityscapes val",
        "pixel acc.",
        "iIoU",
        "mIoU valid px",
    ]
    lines = [
        f"**{title}**",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * 2 + " ---: |" * (len(head) - 2),
    ]
    for r in table:
        cells = [TITLES[r["dataset"]], r["condition"], r["frames"], r["miou"], r["drop"], r["pixel_accuracy"]]
        cells += [r["iiou"], r["miou_valid"] if r["miou_valid"] != "" else "–"]
        lines.append("| " + " | ".join(_cell(c) if c != "" else "–" for c in cells) + " |")
    lines += [
        "",
        "Per-class IoU of every row: `generalize.csv`. iIoU needs instance IDs, which only Cityscapes "
        "and Foggy Cityscapes ship (absent elsewhere); mIoU valid px leaves out the pixels ACDC / "
        "Dark Zurich mark invalid.",
    ]
    return "\n".join(lines) + "\n"


def write_csv(table: list[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return atomic.write_text(path, buffer.getvalue())


def plot(table: list[dict], path: Path) -> Path:
    """Bars of mIoU per row, Cityscapes val as a dashed line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.5), dpi=100)
    ax = fig.add_subplot()
    labels = [f"{TITLES[r['dataset']]}\n{r['condition']}" for r in table]
    values = [0.0 if math.isnan(r["miou"]) else r["miou"] for r in table]
    ax.bar(range(len(values)), values, color="#4878a8")
    clean = next((r["miou"] for r in table if r["dataset"] == "cityscapes"), None)
    if clean is not None:
        ax.axhline(clean, color="#c04040", linestyle="--", label=f"Cityscapes val {clean:.1f}")
        ax.legend(loc="upper right")
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel("mIoU (%)")
    ax.set_ylim(0, 100)
    fig.subplots_adjust(bottom=0.22)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return atomic.write_bytes(path, buffer.getvalue())


def read_readme(readme: str | os.PathLike) -> str:
    """The README's text, checked to hold the generalize markers once each, in order."""
    readme = Path(readme)
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read README {readme} ({exc}): pass --readme PATH") from None
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(END) < text.index(BEGIN):
        raise UserError(f"{readme} must hold the lines {BEGIN} and {END} once each, in that order")
    atomic.check_writable(readme, "README", folder=False)
    return text


def update_readme(readme: str | os.PathLike, section: str) -> bool:
    """Replace the text between the generalize markers of `readme` by `section`; True if it changed."""
    text = read_readme(readme)
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return atomic.write_if_changed(
        readme, (text[:start] + "\n" + section.rstrip("\n") + "\n" + text[stop:]).encode()
    )
