"""`python -m bench cache info|clear`: where the ground-truth cache is, how big, and emptying it."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.evaluation.gt_cache import ENV_VAR

    parser.add_argument(
        "action",
        choices=("info", "clear"),
        help="info: the cache folder, its entries and size; clear: delete every entry",
    )
    parser.add_argument(
        "--gt-cache",
        default=None,
        metavar="DIR",
        help=f"the cache folder (default: ${ENV_VAR}, else $XDG_CACHE_HOME/cityscapes-bench/gt, "
        "else ~/.cache/cityscapes-bench/gt)",
    )


def run(args: argparse.Namespace) -> int:
    from bench.evaluation.gt_cache import AUTO, ENV_VAR, resolve_gt_cache

    cache = resolve_gt_cache(args.gt_cache or AUTO)
    if cache is None:
        print(f"the ground-truth cache is off (${ENV_VAR}=off): nothing to {args.action}")
        return 0
    if args.action == "clear":
        files, size = cache.clear()
        print(f"removed {files} entries ({size / 1e6:.1f} MB) from {cache.root}")
        return 0
    entries = cache.entries()
    size = sum(p.stat().st_size for p in entries)
    print(f"{cache.root}: {len(entries)} entries, {size / 1e6:.1f} MB")
    return 0
