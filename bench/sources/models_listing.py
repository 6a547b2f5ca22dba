"""`python -m bench models`: the registry's entries, their options, presets and parameter counts.

Parameter counts come from building each model (seconds for the ResNet-101 PSPNet); `--no-params` lists
without building, so without importing TensorFlow.
"""

from __future__ import annotations

import argparse

from bench.arguments import size
from models import registry


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
    """ "N params" (and "G GFLOP") of one built variant."""
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
    if not args.no_params:  # before the built-in models import Keras: TensorFlow without its start-up lines
        from bench.common.tensorflow_import import import_tensorflow

        import_tensorflow()
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
