"""`RUN/report.html`: one self-contained page per run (inline CSS and script, images from the run folder,
nothing fetched from the network), rebuilt from the run folder alone by `bench report RUN_DIR`.

Sections: summary against the reference row, per-class table (IoU, iIoU, Acc, precision, recall, Dice,
F1, Boundary IoU, the reference), the figures the run folder holds (per-class bars, confusion matrix,
calibration, robustness heat map, samples), the worst frames as thumbnails, per-city scores, speed and
memory, settings and environment. Every number carries `data-key` / `data-value` (the exact value of the
run JSON) so a browser test can check the page against the JSON.
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from bench.common import atomic
from data.labels import CLASS_NAMES, INSTANCE_CLASS_NAMES

REPORT_NAME = "report.html"
CONTEXT_JSON = "report/context.json"
"""What the page needs beyond result.json and row.json: the reference row it is compared with."""

FIGURES = (
    ("iou_bars.png", "Per-class IoU against the reference"),
    ("confusion.png", "Confusion matrix (rows: ground truth, normalised)"),
    ("reliability.png", "Calibration: reliability diagram"),
    ("robustness.png", "Robustness: mIoU per corruption and severity"),
    ("samples.png", "Sample frames: image, ground truth, prediction"),
)
SPEED_KEYS = ("images_per_s", "latency_p50_ms", "latency_p95_ms", "peak_memory_mb", "eval_seconds")
SETTING_KEYS = (
    "model", "preset", "options", "checkpoint", "dataset", "dataset_kind", "split", "mode", "recipe",
    "train_steps", "device", "precision", "batch", "input_size", "threads", "tensorflow", "runtime",
    "commit", "date", "notes",
)  # fmt: skip

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:12px 20px;color:#1d1d1f;background:#fff}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #ddd}
.sub{color:#555;margin:0 0 10px}
table{border-collapse:collapse;margin:4px 0 10px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}th{background:#f4f4f6;font-weight:600}
td:first-child,th:first-child{text-align:left}.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:96px}
.card b{display:block;font-size:20px}.card span{color:#555;font-size:12px}
.neg{color:#b00020}.pos{color:#006b2e}
figure{margin:6px 0 14px}figure img{max-width:min(100%,860px);border:1px solid #eee}
figcaption{color:#555;font-size:12px}
.frame{border:1px solid #e4e4e4;border-radius:6px;padding:6px;margin:8px 0;break-inside:avoid}
.strip{display:grid;grid-template-columns:repeat(4,1fr);gap:4px}.strip img{width:100%;display:block}
.strip div{font-size:11px;color:#555;text-align:center}.scroll{overflow-x:auto}
@media print{body{max-width:none;font-size:11px}a{color:inherit;text-decoration:none}
h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


SYNTHETIC_NOTE = " · synthetic data: proves the pipeline, not comparable with published numbers"


def _pct(value: Any, digits: int = 2) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.{digits}f}"
    )


def _num(key: str, value: Any, text: str | None = None, tag: str = "td", cls: str = "") -> str:
    """A cell whose data-value is the JSON's exact number (fraction) and whose text is its percent."""
    shown = _pct(value) if text is None else text
    raw = "" if value is None else repr(float(value))
    klass = f' class="{cls}"' if cls else ""
    return f'<{tag} data-key="{escape(key)}" data-value="{raw}"{klass}>{escape(shown)}</{tag}>'


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _card(key: str, label: str, value: Any, ref: float | None = None) -> str:
    delta = ""
    if ref is not None and value is not None:
        d = 100 * value - ref
        delta = f' <span class="{"pos" if d >= 0 else "neg"}">{d:+.2f} vs ref</span>'
    return f'<div class="card">{_num(key, value, tag="b")}<span>{escape(label)}</span>{delta}</div>'


def build_page(run_dir: str | os.PathLike) -> str:
    """The HTML text of a run folder's report (needs its result.json)."""
    run_dir = Path(run_dir)
    result = _read(run_dir / "result.json")
    if result is None:
        from data.errors import UserError

        raise UserError(
            f"{run_dir} has no result.json: pass a run folder of `bench run` or `bench evaluate --out`"
        )
    row = _read(run_dir / "row.json") or {}
    context = _read(run_dir / CONTEXT_JSON) or {}
    reference = context.get("reference") or {}
    worst = _read(run_dir / "report" / "worst.json") or []
    measures = result.get("measures") or {}
    title = context.get("title") or (
        f"{row.get('model', run_dir.name)} on {row.get('dataset', '')} {row.get('split', '')}".strip()
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class=sub>{escape(run_dir.name)} · {result.get('nImages', 0)} frames · "
        f"{escape(str(row.get('date', '')))}"
        f"{SYNTHETIC_NOTE if row.get('dataset_kind') == 'synthetic' else ''}</p>",
    ]
    ref_miou = reference.get("miou")
    label = f"{reference.get('method', '')} ({reference.get('split', '')})" if reference else ""
    boundary = (result.get("boundaryIoU") or {}).get("averageScoreClasses")
    calibration = result.get("calibration") or {}
    parts.append("<h2>Summary</h2><div class=cards>")
    parts.append(_card("averageScoreClasses", "mIoU", result.get("averageScoreClasses"), _float(ref_miou)))
    parts.append(_card("averageScoreInstClasses", "iIoU", result.get("averageScoreInstClasses")))
    parts.append(_card("averageScoreCategories", "category mIoU", result.get("averageScoreCategories")))
    for key in ("aAcc", "mAcc", "fwIoU", "mDice", "mF1", "mPrecision", "mRecall"):
        parts.append(_card(f"measures.{key}", key, measures.get(key)))
    if boundary is not None:
        parts.append(_card("boundaryIoU.averageScoreClasses", "boundary mIoU", boundary))
    if calibration.get("ece") is not None:
        parts.append(_card("calibration.ece", "ECE", calibration.get("ece")))
    parts.append("</div>")
    if reference:
        parts.append(f"<p class=sub>Reference row: {escape(label)}, mIoU {escape(str(ref_miou))}</p>")
    parts.append(_class_table(result, reference))
    parts.append("<h2>Figures</h2>")
    for name, caption in FIGURES:
        if (run_dir / name).is_file():
            parts.append(
                f'<figure><a href="{name}"><img src="{name}" alt="{escape(caption)}"></a>'
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
    parts.append(_worst_section(worst))
    parts.append(_city_table(result.get("cities") or []))
    parts.append("<h2>Speed and memory</h2>")
    speed = {key: _float(row.get(key)) for key in SPEED_KEYS if _float(row.get(key)) is not None}
    if speed:
        parts.append("<table><tr><th>measure</th><th>value</th></tr>")
        for key, value in speed.items():
            cell = f'<td data-key="row.{key}" data-value="{value!r}">{value:.4g}</td>'
            parts.append(f"<tr><td>{escape(key)}</td>{cell}</tr>")
        parts.append("</table>")
    else:
        parts.append("<p class=sub>Not measured: an evaluation of prediction files runs no model.</p>")
    parts.append("<h2>Settings and environment</h2><table><tr><th>setting</th><th>value</th></tr>")
    settings = {k: row[k] for k in SETTING_KEYS if row.get(k) not in (None, "")}
    settings.update(context.get("settings") or {})
    for key, value in settings.items():
        parts.append(f"<tr><td>{escape(key)}</td><td style='text-align:left'>{escape(str(value))}</td></tr>")
    parts.append("</table><p class=sub>Files: result.json, frames.csv, confusion.csv")
    parts.append(
        " in this folder. Per-frame means are not the dataset mIoU: see the README.</p></body></html>\n"
    )
    return "".join(parts)


def _float(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _class_table(result: dict, reference: dict) -> str:
    per = (result.get("measures") or {}).get("perClass", {})
    inst = result.get("classInstScores", {})
    bound = (result.get("boundaryIoU") or {}).get("classScores") or {}
    cols = ["class", "IoU", "iIoU", "Acc", "precision", "recall", "Dice", "F1"]
    cols += ["boundary IoU"] * bool(bound) + ["reference IoU"] * bool(reference)
    out = ["<h2>Per class</h2><div class=scroll><table><tr>", *(f"<th>{c}</th>" for c in cols), "</tr>"]
    for name in CLASS_NAMES:
        m = per.get(name, {})
        out.append(
            f"<tr><td>{escape(name)}</td>{_num(f'classScores.{name}', result['classScores'].get(name))}"
        )
        out.append(
            _num(f"classInstScores.{name}", inst.get(name)) if name in INSTANCE_CLASS_NAMES else "<td>–</td>"
        )
        for key in ("acc", "precision", "recall", "dice", "f1"):
            out.append(_num(f"measures.perClass.{name}.{key}", m.get(key)))
        if bound:
            out.append(_num(f"boundaryIoU.classScores.{name}", bound.get(name)))
        if reference:
            ref = _float(reference.get(name))
            out.append(f"<td>{'–' if ref is None else f'{ref:.2f}'}</td>")
        out.append("</tr>")
    out.append("</table></div>")
    return "".join(out)


def _worst_section(worst: list[dict]) -> str:
    if not worst:
        return ""
    out = [
        "<h2>Worst frames</h2><p class=sub>Lowest per-frame mIoU first; click a picture for full size. "
        "Error map: right pixels near white, wrong ones in the colour of the class predicted (cyan: void), "
        "ignored pixels black.</p>"
    ]
    for rank, entry in enumerate(worst, start=1):
        key = entry["frame"]
        low = sorted(entry.get("iou", {}).items(), key=lambda kv: kv[1])[:4]
        worst_classes = ", ".join(f"{escape(n)} {100 * v:.1f}" for n, v in low)
        out.append(
            f'<div class=frame data-frame="{escape(key)}"><b>#{rank} {escape(key)}</b> · mIoU '
            f"{_num(f'frame.{key}.miou', entry.get('miou'), tag='span')} · pixel acc "
            f"{_num(f'frame.{key}.pixel_acc', entry.get('pixel_acc'), tag='span')} · "
            f"{entry.get('valid_pixels', 0)} valid pixels · lowest: {worst_classes}<div class=strip>"
        )
        for kind, caption in (
            ("image", "image"),
            ("gt", "ground truth"),
            ("pred", "prediction"),
            ("error", "errors"),
        ):
            files = entry.get("files", {}).get(kind)
            if files:
                out.append(
                    f'<a href="{escape(files["full"])}"><img src="{escape(files["thumb"])}" '
                    f'alt="{escape(caption)} of {escape(key)}" loading=eager><div>{caption}</div></a>'
                )
            else:
                out.append(f"<div>{caption}: not kept</div>")
        out.append("</div></div>")
    return "".join(out)


def _city_table(cities: list[dict]) -> str:
    if not cities:
        return ""
    out = [
        "<h2>Per city</h2><table><tr><th>city</th><th>frames</th><th>valid pixels</th>"
        "<th>pixel acc</th><th>mIoU</th></tr>"
    ]
    for c in cities:
        city = c["city"]
        out.append(
            f"<tr><td>{escape(city)}</td><td>{c['frames']}</td><td>{c['valid_pixels']}</td>"
            f"{_num(f'city.{city}.pixel_acc', c.get('pixel_acc'))}"
            f"{_num(f'city.{city}.miou', c.get('miou'))}</tr>"
        )
    out.append("</table>")
    return "".join(out)


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write `run_dir/report.html` (atomically) from the run folder."""
    return atomic.write_text(Path(run_dir) / REPORT_NAME, build_page(run_dir))
