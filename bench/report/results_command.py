"""`python -m bench results list|tag|untag|remove`: look after the rows of results.csv by name.

A row is named by its `row` column (the run folder's name, or `bench evaluate --row NAME`), or by its
0-based index (`#3`) for rows written before rows had names. Tags are `;`-separated labels (e.g.
`baseline`, `bad-gt`); `remove` drops the row from results.csv (its run folder stays). Every change is made
under the file's lock and written atomically, then results.md and the README results section follow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import atomic
from bench.common.paths import README, RESULTS_CSV
from bench.report import results
from data.errors import UserError


def _find(rows: list[dict[str, str]], name: str, path: Path) -> int:
    if name.startswith("#") and name[1:].isdigit():
        index = int(name[1:])
        if index < len(rows):
            return index
        raise UserError(f"{path} has {len(rows)} row(s): there is no row {name}")
    matches = [i for i, r in enumerate(rows) if r.get("row") == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UserError(
            f"{len(matches)} rows of {path} are named {name}: name one by its index, e.g. #{matches[0]}"
        )
    known = [r.get("row") for r in rows if r.get("row")][-5:]
    raise UserError(
        f"no row named {name} in {path}: `python -m bench results list` shows the names"
        + (f" (latest: {', '.join(known)})" if known else "")
    )


def edit_rows(csv_path: Path, name: str, action: str, tag: str = "") -> dict[str, str]:
    """Tag, untag or remove the row `name` of `csv_path` (under its lock, atomically); the row as it was."""
    csv_path = Path(csv_path)
    with atomic.locked(csv_path):
        header, rows, _ = results._read_table(csv_path)
        if not rows:
            raise UserError(f"{csv_path} has no rows")
        index = _find(rows, name, csv_path)
        row = dict(rows[index])
        if action == "remove":
            del rows[index]
        else:
            tags = [t for t in rows[index].get("tags", "").split(";") if t]
            if action == "tag" and tag not in tags:
                tags.append(tag)
            elif action == "untag":
                if tag not in tags:
                    raise UserError(f"row {name} has no tag {tag!r} (tags: {', '.join(tags) or 'none'})")
                tags.remove(tag)
            rows[index]["tags"] = ";".join(tags)
        columns = results.merged_columns(header, results.COLUMNS)
        atomic.write_text(csv_path, results.serialize(columns, rows))
        from bench.report.tables import render_results_markdown

        atomic.write_text(csv_path.with_suffix(".md"), render_results_markdown(results.read_rows(csv_path)))
    return row


def listing(csv_path: Path) -> str:
    frame = results.read_rows(csv_path)
    from bench.report.tables import frames_label

    lines = []
    for i, r in enumerate(frame.to_dict("records")):
        name = r.get("row") or "-"
        tags = f" [{r['tags'].replace(';', ', ')}]" if r.get("tags") else ""
        lines.append(
            f"#{i:<3d} {name}  {r['model']} on {r['dataset']} {r['split']}, {frames_label(r)} frames: "
            f"mIoU {r['miou']:.1f}{tags}"
        )
    return "\n".join(lines) or f"{csv_path} has no rows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "tag", "untag", "remove"))
    parser.add_argument("name", nargs="?", help="the row: its name (`list` shows them) or #INDEX")
    parser.add_argument("tag", nargs="?", help="with tag/untag: the label, e.g. baseline")
    parser.add_argument(
        "--results", default=str(RESULTS_CSV), help="results file (default results/results.csv)"
    )
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate the README section")


def run(args: argparse.Namespace) -> int:
    path = Path(args.results)
    if args.action == "list":
        print(listing(path))
        return 0
    if not args.name:
        raise UserError(f"bench results {args.action} needs the row's name (`bench results list` shows them)")
    if args.action in ("tag", "untag") and not args.tag:
        raise UserError(f"bench results {args.action} {args.name} needs the tag, e.g. baseline")
    if args.tag and (";" in args.tag or "," in args.tag or not args.tag.strip()):
        raise UserError(f"tag {args.tag!r}: one word without ';' or ','")
    row = edit_rows(path, args.name, args.action, args.tag or "")
    done = {"remove": "removed", "tag": f"tagged {args.tag}:", "untag": f"untagged {args.tag}:"}[args.action]
    print(f"{done} row {row.get('row') or args.name} ({row.get('model')} on {row.get('dataset')}) in {path}")
    if not args.no_readme and path.resolve() == RESULTS_CSV.resolve():
        from bench.report.readme import update_readme

        update_readme(README, path)
    return 0
