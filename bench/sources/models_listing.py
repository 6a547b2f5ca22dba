"""`python -m bench models`: the registry's entries, their options, presets and parameter counts.

Parameter counts of the built-in models (every preset, 19 classes, no options) are read from
`models/parameter_counts.json`, computed once by building each model (a test checks them against the
builders), so the listing takes a second without TensorFlow; other variants (plugins, `-o`, `--num-classes`,
`--flops`) are built on demand. `--no-params` lists without any counts.
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

from bench.arguments import size
from models import registry

COUNTS_FILE = Path(registry.__file__).with_name("parameter_counts.json")


@cache
def stored_counts() -> dict[str, dict[str, int]]:
    """{model: {preset or "default": parameters}} of the built-in models at 19 classes, no options."""
    try:
        return json.loads(COUNTS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def stored_count(name: str, preset: str | None, num_classes: int, options: dict) -> int | None:
    if num_classes != 19 or options:
        return None
    return stored_counts().get(name, {}).get(preset or "default")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="MODEL",
        help="registry names or package.module:function plugins (default: all registered)",
    )
    parser.add_argument("--no-params", action="store_true", help="do not build models to count parameters")
    parser.add_argument("--num-classes", type=int, default=19, help="classes of the built models (19)")
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option applied to every variant, e.g. -o depth=101 (repeatable)",
    )
    parser.add_argument(
        "--flops", metavar="HxW", type=size, help="also count forward GFLOP per image at this size"
    )


def format_options(options: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def measure(
    name: str, preset: str | None, num_classes: int, options: dict, flops_at: tuple[int, int] | None
) -> str:
    """ "N params" (and "G GFLOP") of one variant: the stored count, else built."""
    stored = stored_count(name, preset, num_classes, options)
    if stored is not None and not flops_at:
        return f"{stored:>12,d} params"
    from bench.common.tensorflow_import import import_tensorflow

    import_tensorflow()
    import keras

    model = registry.build(name, num_classes=num_classes, preset=preset, **options)
    text = f"{model.count_params():>12,d} params"
    if flops_at:
        from models.flops import count_flops

        text += f" {count_flops(model, *flops_at) / 1e9:9.2f} GFLOP"
    del model
    keras.backend.clear_session()
    return text


def describe(
    name: str,
    *,
    count: bool,
    num_classes: int,
    options: dict | None = None,
    flops_at: tuple[int, int] | None = None,
) -> list[str]:
    """Lines describing one entry: description, options, then one row per variant with its parameters."""
    entry = registry.get(name)
    options = options or {}
    registry.check_options(name, **options)  # an unknown option is an error, also without building
    lines = [f"{name}: {entry.description}", f"  options: {format_options(entry.options())}"]
    if options:
        lines.append(f"  with: {format_options(options)}")
    variants: list[tuple[str | None, dict]] = [(None, {}), *entry.presets.items()]
    for preset, preset_options in variants:
        label = "default" if preset is None else f"preset {preset}"
        figures = measure(name, preset, num_classes, options, flops_at) if count else ""
        detail = f"  ({format_options(preset_options)})" if preset_options else ""
        lines.append(f"  {label:<16s}{figures}{detail}".rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    names = args.names or registry.available()
    options = dict(registry.parse_option(text) for text in args.option)
    flops_at = args.flops
    for i, name in enumerate(names):
        if i:
            print()
        for line in describe(
            name, count=not args.no_params, num_classes=args.num_classes, options=options, flops_at=flops_at
        ):
            print(line, flush=True)
    return 0
