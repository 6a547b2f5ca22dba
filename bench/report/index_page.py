"""`results/index.html`: every run folder's report in one table, sortable by mIoU, date or any column
(a click on a header; a few lines of inline script, nothing fetched)."""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path

from bench.common import atomic

COLUMNS = ("date", "model", "dataset", "split", "mode", "frames", "mIoU", "aAcc", "fwIoU", "report")

SCRIPT = """
document.querySelectorAll('th[data-sort]').forEach(function(th, col){th.addEventListener('click', function(){
var body=th.closest('table').tBodies[0], rows=Array.from(body.rows), up=th.dataset.dir!=='up';
th.dataset.dir=up?'up':'down';rows.sort(function(a,b){var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v;
var nx=parseFloat(x), ny=parseFloat(y), c=(isNaN(nx)||isNaN(ny))?x.localeCompare(y):nx-ny;return up?c:-c;});
rows.forEach(function(r){body.appendChild(r);});});});
"""
CSS = (
    "body{font:14px system-ui,sans-serif;margin:16px auto;max-width:1100px;padding:0 16px}"
    "table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}"
    "th{background:#f4f4f6;cursor:pointer}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "@media print{th{cursor:auto}}"
)


def _runs(runs_dir: Path) -> list[dict]:
    out = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
        try:
            result = json.loads((folder / "result.json").read_text())
            row = json.loads((folder / "row.json").read_text()) if (folder / "row.json").is_file() else {}
        except (OSError, ValueError):
            continue  # a half-written or foreign folder: not a run
        measures = result.get("measures") or {}
        out.append(
            {
                "date": str(row.get("date", "")),
                "model": str(row.get("model", folder.name)),
                "dataset": str(row.get("dataset", "")),
                "split": str(row.get("split", "")),
                "mode": str(row.get("mode", "")),
                "frames": result.get("nImages"),
                "mIoU": result.get("averageScoreClasses"),
                "aAcc": measures.get("aAcc"),
                "fwIoU": measures.get("fwIoU"),
                "report": f"{runs_dir.name}/{folder.name}/report.html"
                if (folder / "report.html").is_file()
                else "",
                "folder": folder.name,
            }
        )
    return out


def build_index(runs_dir: str | os.PathLike) -> str:
    runs_dir = Path(runs_dir)
    rows = sorted(_runs(runs_dir), key=lambda r: r["date"], reverse=True)
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>cityscapes-bench runs</title>",
        f"<style>{CSS}</style></head><body><h1>Runs</h1><p>{len(rows)} runs; click a header to sort.</p>",
        "<table><thead><tr>",
        *(f'<th data-sort="{c}">{c}</th>' for c in COLUMNS),
        "</tr></thead><tbody>",
    ]
    for r in rows:
        parts.append("<tr>")
        for c in COLUMNS:
            value = r[c]
            if c == "report":
                link = (
                    f'<a href="{escape(value)}">{escape(r["folder"])}</a>' if value else escape(r["folder"])
                )
                parts.append(f'<td data-v="{escape(r["folder"])}">{link}</td>')
            elif c in ("mIoU", "aAcc", "fwIoU"):
                ok = isinstance(value, (int, float)) and not math.isnan(value)
                text = f"{100 * value:.2f}" if ok else "–"
                parts.append(f'<td class=n data-key="{c}" data-v="{value if ok else ""}">{text}</td>')
            else:
                parts.append(f'<td data-v="{escape(str(value))}">{escape(str(value))}</td>')
        parts.append("</tr>")
    parts.append(f"</tbody></table><script>{SCRIPT}</script></body></html>\n")
    return "".join(parts)


def write_index(runs_dir: str | os.PathLike) -> Path:
    """Write `index.html` beside `runs_dir` (results/index.html for results/runs/)."""
    runs_dir = Path(runs_dir)
    return atomic.write_text(runs_dir.parent / "index.html", build_index(runs_dir))
