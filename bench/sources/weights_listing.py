"""`python -m bench weights`: the published-weights table (bench/sources/weights.py), with the published
mIoU of each entry from its reference rows; `--markdown` for the README, `NAME` for every field of one."""

from __future__ import annotations

import argparse

from bench.sources import weights as table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="show every field of these entries")
    parser.add_argument("--markdown", action="store_true", help="a GitHub markdown table (for the README)")


def _options(entry: table.Weights) -> str:
    text = ", ".join(f"{k}={v}" for k, v in entry.options.items())
    return f"{entry.model} ({text})" if text else entry.model


def _published(entry: table.Weights, refs) -> str:
    """'66.4 val, 66.2 test' (and the protocol when it is not single-scale), '-' when none is published."""
    parts = []
    for row in table.published(entry, refs):
        mode = "" if row["test_mode"] in ("whole", "", None) else f" {row['test_mode']}"
        parts.append(f"{_miou(row['miou'])} {row['split']}{mode}")
    return ", ".join(parts) or "-"


def rows(entries: list[table.Weights]) -> list[list[str]]:
    refs = table.reference_rows()
    return [
        [
            e.name,
            _options(e),
            e.runtime,
            _published(e, refs),
            e.licence,
            (e.digest or "")[:12],
            e.url,
        ]
        for e in entries
    ]


HEADERS = ("name", "model", "runtime", "published mIoU", "licence", "sha256", "url")


def plain_table(headers, body) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    lines = [list(headers), *body]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(headers))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def _miou(value: float) -> str:
    """A published mIoU as published: 70.0, 66.4, 60.336."""
    text = f"{value:g}"
    return text if "." in text else f"{text}.0"


def describe(entry: table.Weights) -> list[str]:
    lines = [f"{entry.name}:"]
    fields = {
        "model": _options(entry),
        "runtime": entry.runtime,
        "file": entry.file_name,
        "url": entry.url,
        "sha256": entry.sha256 or (f"{entry.digest} (prefix in the file name)" if entry.digest else "-"),
        "size": f"{entry.size:,d} bytes" if entry.size else "-",
        "licence": entry.licence,
        "source": entry.source,
        "input": entry.input_recipe,
    }
    lines += [f"  {k + ':':<10s}{v}" for k, v in fields.items()]
    for row in table.published(entry):
        lines.append(
            f"  published {_miou(row['miou'])} mIoU, {row['split']}, {row['protocol']} "
            f"(reference {row['id']})"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    if args.names:
        for i, name in enumerate(args.names):
            print(("\n" if i else "") + "\n".join(describe(table.get(name))))
        return 0
    entries = table.table()
    if args.markdown:
        from bench.report.tables import markdown_table

        body = [
            [f"`{r[0]}`", *r[1:5], f"`{r[5]}`", f"[{r[6].rsplit('/', 1)[-1]}]({r[6]})"] for r in rows(entries)
        ]
        print(markdown_table(HEADERS[:-1] + ("file",), body), end="")
    else:
        print(plain_table(HEADERS, rows(entries)))
    return 0
