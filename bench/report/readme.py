"""`python -m bench readme`: regenerate the README results section from results.csv and the references.

Only the text between `<!-- results:begin -->` and `<!-- results:end -->` is rewritten. The section and
the plots it links to (bars against the reference, the latest row among the published leaderboard) depend
only on the CSV files, so running it twice changes nothing, byte for byte (files whose bytes would not
change are not rewritten at all).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.common import atomic
from bench.common.markdown import markdown_table, pct, per_class_table, signed
from bench.common.paths import README, RESULTS_CSV
from bench.report import leaderboard, references
from bench.report.leaderboard import TABLES as LEADERBOARD_TABLES
from bench.report.readme_markers import BEGIN, END  # their own part of the section
from bench.report.results import read_rows
from bench.report.tables import SYNTHETIC_NOTE, dataset_label, frames_label, method_label
from data.errors import UserError

PLOT_NAME = "latest_iou.png"
LEADERBOARD_PLOT_NAME = "leaderboard.png"
GROUP_COLUMNS = ("model", "preset", "dataset", "split", "mode")


HIDDEN_TAGS = frozenset({"no-readme", "hidden"})
"""Rows tagged so (`bench run --no-readme`, `bench results tag NAME hidden`) stay out of the README."""


def full_rows(frame):
    """The rows of whole splits (`scope` full, bench/report/identity.py) not tagged `HIDDEN_TAGS`: the only
    ones the README shows."""
    if frame.empty or "scope" not in frame.columns:
        return frame.iloc[0:0]
    hidden = frame["tags"].astype(str).map(lambda t: bool(HIDDEN_TAGS & set(t.split(";"))))
    return frame[(frame["scope"].astype(str) == "full") & ~hidden]


def latest_rows(frame):
    """The last full-split row (bench/report/identity.py) of each (model, preset, dataset, split, mode), in
    order of each group's first run; partial and ad-hoc rows stay in results.csv only, as do removed ones."""
    frame = full_rows(frame)
    if frame.empty:
        return frame
    keys = frame[list(GROUP_COLUMNS)].astype(str).agg("\x1f".join, axis=1)
    last = keys.groupby(keys, sort=False).tail(1).index  # last index per group
    order = keys.drop_duplicates(keep="first")
    chosen = {keys[i]: i for i in last}
    return frame.loc[[chosen[k] for k in order]]


def _link(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target, base)).as_posix()


def published_beside(records: list[dict], refs) -> str:
    """Rows of published checkpoints next to the reference row each names (mIoU); '' when there are none."""
    if "id" not in getattr(refs, "columns", ()):
        return ""
    by_id = {str(r["id"]): r for r in refs.to_dict("records") if isinstance(r.get("id"), str) and r["id"]}
    body = []
    for r in records:
        ref = by_id.get(str(r.get("reference") or ""))
        if ref is None:
            continue
        body.append(
            [
                method_label(r["model"], r.get("preset", "")),
                dataset_label(r["dataset"], r.get("dataset_kind", "")),
                r["mode"],
                pct(r.get("miou"), 2),
                f"{ref['method']}, {ref['protocol']}",
                pct(ref.get("miou"), 2),
                signed(float(r["miou"]) - float(ref["miou"]), 2),
            ]
        )
    if not body:
        return ""
    headers = ["Method", "dataset", "mode", "mIoU", "published checkpoint should score", "mIoU", "delta"]
    return (
        "Rows of published checkpoints beside the reference row they reproduce (mIoU in percent):\n\n"
        + markdown_table(headers, body, right=(3, 5, 6))
    )


def leaderboard_section(latest: dict | None, board, val, plot_link: str | None) -> str:
    """Where the latest row lands among the published methods (table and range plot), then the leaderboard
    and the val-only table with their sources."""
    parts = ["### Among published Cityscapes results\n"]
    if latest is not None:
        dataset = dataset_label(latest["dataset"], latest.get("dataset_kind", ""))
        method = method_label(latest["model"], latest.get("preset", ""))
        where = f"{method} on {dataset}, {latest['split']} split"
        parts.append(
            f"The latest row ({where}) placed per class among the published test entries "
            f"(`bench compare results/results.csv --reference leaderboard`; rank r/N: r-th of N = the "
            f"entries that give that class + ours; gap = ours - best):\n"
        )
        notes = leaderboard.caveats(latest)
        if notes:
            parts.append("\n".join(f"- {n}" for n in notes) + "\n")
        parts.append(leaderboard.format_markdown(leaderboard.place(latest, board)))
        if plot_link is not None:
            parts.append(f"![Published range per class and the latest row]({plot_link})\n")
    parts.append(
        f"The leaderboard ({leaderboard.describe_board(board)}; `-` where the source gives no number and "
        f"the row's notes say why):\n"
    )
    parts.append(leaderboard.board_markdown(board))
    val_csv = f"results/reference/{leaderboard.VAL_TABLE}.csv"
    parts.append(f"Methods that publish only val numbers (`{val_csv}`):\n")
    parts.append(leaderboard.val_markdown(val))
    return "\n".join(parts)


def render_section(
    frame, refs, plot_link: str | None, results_md_link: str, leaderboard_part: str = ""
) -> str:
    """Markdown between the markers: our latest rows, the reference rows with sources, the bar plot, then
    the leaderboard part (`leaderboard_section`)."""
    parts = [
        "<!-- generated by `python -m bench readme` from results/results.csv and results/reference/; "
        "edits between the markers are overwritten -->\n"
    ]
    latest = latest_rows(frame)
    if latest.empty:
        parts.append(
            "No full-split results yet: run `make bench MODEL=pspnet` (rows of samples, `--limit` runs and "
            "other ad-hoc folders are kept in results.csv, marked partial, and not shown here).\n"
        )
    else:
        records = latest.to_dict("records")
        parts.append(
            "Our latest row per model, dataset, split and mode, on whole splits only (real Cityscapes or "
            "the embedded synthetic set; partial runs are in results.csv; IoU in percent, "
            "cityscapesScripts definitions; a row of n seeds shows mean ± sample std across them):\n"
        )
        parts.append(
            per_class_table(
                (
                    (
                        [
                            method_label(r["model"], r.get("preset", "")),
                            dataset_label(r["dataset"], r.get("dataset_kind", "")),
                            r["split"],
                            frames_label(r),
                            r["mode"],
                        ],
                        r,
                    )
                    for r in records
                ),
                label_headers=("Method", "dataset", "split", "n frames", "mode"),
                seeds=True,
            )
        )
        if any(r.get("dataset_kind") == "synthetic" for r in records):
            parts.append(f"> {SYNTHETIC_NOTE}\n")
        beside = published_beside(records, refs)
        if beside:
            parts.append(beside)
        parts.append(
            f"Every run, with commit, checkpoint and speed: [{results_md_link}]({results_md_link}).\n"
        )
    if len(refs):
        records = [r for r in refs.to_dict("records") if r["reference"] not in LEADERBOARD_TABLES]
        parts.append(
            "Published reference rows (`results/reference/`; `-` where the source gives no number):\n"
        )
        parts.append(
            per_class_table(
                (([r["method"], r["reference"], r["split"], r["protocol"]], r) for r in records),
                label_headers=("Reference", "table", "split", "protocol"),
            )
        )
        seen: dict[str, str] = {}
        for r in records:
            seen.setdefault(r["reference"], f"- `{r['reference']}`: {r['source']}, <{r['url']}>")
        parts.append("\n".join(seen.values()) + "\n")
    if plot_link is not None:
        parts.append(f"![Per-class IoU of the latest row against the reference]({plot_link})\n")
    if leaderboard_part:
        parts.append(leaderboard_part)
    return "\n".join(parts)


def splice(text: str, section: str, path: Path) -> str:
    """`text` with everything between the markers replaced by `section`; clear errors for bad markers."""
    begins, ends = text.count(BEGIN), text.count(END)
    if begins != 1 or ends != 1:
        raise UserError(
            f"{path} must contain the marker lines {BEGIN} and {END} exactly once each (found "
            f"{begins} and {ends}): add them where the results section belongs"
        )
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    if stop < start:
        raise UserError(f"{path}: {END} comes before {BEGIN}; put the begin marker first")
    return text[:start] + "\n" + section.rstrip("\n") + "\n" + text[stop:]


def update_readme(
    readme: str | os.PathLike = README,
    results_csv: str | os.PathLike = RESULTS_CSV,
    *,
    reference: str = references.DEFAULT_REFERENCE,
    reference_dir: str | os.PathLike = references.REFERENCE_DIR,
    plot: str | os.PathLike | None = None,
    missing_ok: bool = True,
) -> bool:
    """Rewrite the README results section (and the bar plot of the latest row); True if anything changed.

    Every input is read and every output checked writable before anything is written. A missing results
    file means "no results yet" only with `missing_ok` (the project's default file); a path the user gave
    must exist, so a typo never replaces the README's results.
    """
    readme, results_csv = Path(readme), Path(results_csv)
    if not readme.is_file():
        what = "is not a file" if readme.exists() else "does not exist"
        raise UserError(f"README {readme} {what}: pass --readme PATH")
    try:
        text = readme.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"README {readme} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read README {readme}: {exc.strerror}") from None
    splice(text, "", readme)  # check the markers before any other work
    frame = read_rows(results_csv, missing_ok=missing_ok)
    refs = references.load_all(reference_dir)
    references.select(reference, 0, reference_dir)  # the bar plot's reference: an unknown name fails now
    board = _leaderboard_tables(reference_dir)
    plot_path = Path(plot) if plot is not None else results_csv.parent / PLOT_NAME
    board_plot = plot_path.parent / LEADERBOARD_PLOT_NAME
    atomic.check_writable(readme, "README", folder=False)
    if not frame.empty:  # checked with any row: whether a row is shown must not decide if a bad path fails
        atomic.check_writable(plot_path, "bar plot", folder=False)
        if board is not None:
            atomic.check_writable(board_plot, "leaderboard plot", folder=False)
    changed = False
    plot_link = None
    shown = full_rows(frame)
    latest = None if shown.empty else shown.iloc[-1].to_dict()
    if latest is not None:
        changed |= _draw_latest(latest, reference, reference_dir, plot_path)
        plot_link = _link(plot_path, readme.parent)
    board_part = ""
    if board is not None:
        board_link = None
        if latest is not None:
            changed |= _draw_leaderboard(latest, board[0], board_plot)
            board_link = _link(board_plot, readme.parent)
        board_part = leaderboard_section(latest, board[0], board[1], board_link)
    section = render_section(
        frame, refs, plot_link, _link(results_csv.with_suffix(".md"), readme.parent), board_part
    )
    changed |= atomic.write_if_changed(readme, splice(text, section, readme).encode("utf-8"))
    return changed


def _leaderboard_tables(reference_dir: str | os.PathLike):
    """(test leaderboard, val table), checked; None where the reference folder has no leaderboard."""
    if not all((Path(reference_dir) / f"{name}.csv").is_file() for name in LEADERBOARD_TABLES):
        return None
    return tuple(leaderboard.load(name, reference_dir) for name in LEADERBOARD_TABLES)


def _draw_leaderboard(row: dict, board, out: Path) -> bool:
    """The published range per class with `row`'s values; written only if its bytes change."""
    import tempfile

    from bench.report import plots

    label = f"{method_label(row['model'], row.get('preset', ''))} on {row['dataset']} ({row['split']})"
    with tempfile.TemporaryDirectory() as tmp:
        drawn = plots.leaderboard_ranges(row, board, Path(tmp) / out.name, ours_label=label)
        return atomic.write_if_changed(out, drawn.read_bytes())


def _draw_latest(row: dict, reference: str, reference_dir: str | os.PathLike, out: Path) -> bool:
    """Bar plot of `row` against the first row of `reference`; written only if its bytes change."""
    import tempfile

    from bench.report import plots

    ref = references.select(reference, 0, reference_dir)
    label = f"{method_label(row['model'], row.get('preset', ''))} on {row['dataset']}"
    if row.get("dataset_kind") == "synthetic":
        label += " (synthetic)"
    with tempfile.TemporaryDirectory() as tmp:
        drawn = plots.iou_bars(
            row,
            Path(tmp) / out.name,
            reference=ref,
            ours_label=label,
            reference_label=f"{ref['method']} ({ref['split']})",
        )
        return atomic.write_if_changed(out, drawn.read_bytes())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readme", default=str(README), help="README to update (default: the project's)")
    parser.add_argument(
        "--results",
        default=None,
        help=f"results CSV (default: the project's, {RESULTS_CSV.name}; a path given must exist)",
    )
    parser.add_argument(
        "--reference",
        default=references.DEFAULT_REFERENCE,
        help=f"reference table of the bar plot (default {references.DEFAULT_REFERENCE})",
    )
    parser.add_argument("--plot", default=None, help=f"bar plot path (default {PLOT_NAME} next to the CSV)")


def run(args: argparse.Namespace) -> int:
    changed = update_readme(
        args.readme,
        args.results or RESULTS_CSV,
        reference=args.reference,
        plot=args.plot,
        missing_ok=args.results is None,
    )
    print(f"{args.readme}: {'updated' if changed else 'unchanged'}")
    return 0
