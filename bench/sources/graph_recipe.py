"""The recipe of an exported graph (ONNX, OpenVINO IR): what the graph cannot say about its input and output.

Looked up in this order: `--recipe FILE`, `MODEL.onnx.json` (`MODEL.xml.json`) beside the file, the
`cityscapes_bench` entry of the file's metadata (ONNX `metadata_props`, OpenVINO `rt_info`). Its format:

    {"input":  {"mean": [..3], "std": [..3], "channel_order": "RGB", "value_range": 255, "divisor": 1,
                "size": [512, 1024], "order": "resize-then-normalize", "resize": "bilinear",
                "output_resize": "bilinear"},
     "output": {"kind": "logits", "channels": [0, 1, ..., 18]},
     "layout": "NCHW"}

`input` is the checkpoints' `InputSpec` (data/normalization.py: same keys, same defaults; mean and std are
required, since nothing can guess them). `output.kind`: "logits" (float scores per channel) or "train_ids"
(an integer map); `output.channels`: for train IDs 0..18 in order, the output channel (or, for train_ids, the
value) that holds it; default 0..18, so a 20th "background" channel is left out of the arg-max, and a model
whose channel 0 is "unlabeled" says 1..19. `layout` (NCHW or NHWC, input and output alike) is optional: the
graph's axis of size 3 says it where it can. No recipe is an error naming where it was looked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.errors import UserError
from data.normalization import InputSpec

METADATA_KEY = "cityscapes_bench"
KINDS = ("logits", "train_ids")
LAYOUTS = ("NCHW", "NHWC")
NUM_TRAIN_IDS = 19
DEFAULT_CHANNELS = tuple(range(NUM_TRAIN_IDS))
TOP_KEYS = {"input", "output", "layout"}
INPUT_KEYS = {
    "mean",
    "std",
    "channel_order",
    "value_range",
    "divisor",
    "size",
    "order",
    "resize",
    "antialias",  # written by InputSpec.to_dict for the reader; follows from `resize`
    "output_resize",
}
OUTPUT_KEYS = {"kind", "channels"}
EXAMPLE = (
    '{"input": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "channel_order": "RGB", '
    '"value_range": 255}, "output": {"kind": "logits", "channels": [0, 1, ..., 18]}}'
)


@dataclass(frozen=True)
class GraphRecipe:
    """A parsed recipe: the input spec, the output kind and channels, the layout (None: from the graph),
    and where it came from (for the run's metadata and for error messages)."""

    input: InputSpec
    kind: str = "logits"
    channels: tuple[int, ...] = DEFAULT_CHANNELS
    layout: str | None = None
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        written: dict[str, Any] = {
            "input": self.input.to_dict(),
            "output": {"kind": self.kind, "channels": list(self.channels)},
        }
        if self.layout:
            written["layout"] = self.layout
        return written


def sidecar(model: str | os.PathLike) -> Path:
    """`MODEL.onnx.json` beside `MODEL.onnx` (the file name with `.json` added)."""
    model = Path(model)
    return model.with_name(model.name + ".json")


def find_recipe(
    model: str | os.PathLike, recipe: str | os.PathLike | None, embedded: str | None
) -> GraphRecipe:
    """The recipe of `model`: the `--recipe` file, else its sidecar, else `embedded` (the text of the file's
    `cityscapes_bench` metadata entry, None where it has none), else a UserError saying what to write."""
    if recipe is not None:
        path = Path(recipe)
        if not path.is_file():
            raise UserError(f"--recipe {path} does not exist: give the JSON recipe of {model}")
        return parse_recipe(_read(path), f"--recipe {path}")
    beside = sidecar(model)
    if beside.is_file():
        return parse_recipe(_read(beside), str(beside))
    if embedded is not None:
        return parse_recipe(_loads(embedded, f"{model} metadata '{METADATA_KEY}'"), f"{model} metadata")
    raise UserError(
        f"{model} has no recipe: the graph does not say how its input is normalised nor what its output "
        f"holds. Write {beside} (or pass --recipe FILE) with the fields input.mean, input.std (and "
        f"channel_order, value_range, divisor, size, order, resize, output_resize where they differ from "
        f"the defaults), output.kind (logits|train_ids), output.channels and layout (NCHW|NHWC), e.g. "
        f"{EXAMPLE}"
    )


def parse_recipe(recipe: Any, origin: str) -> GraphRecipe:
    """A `GraphRecipe` from the decoded JSON `recipe`; every unknown key or bad value a UserError naming
    `origin` (the file or metadata it came from)."""
    if not isinstance(recipe, Mapping):
        raise UserError(f"recipe {origin} is not a JSON object: expected e.g. {EXAMPLE}")
    _known(recipe, TOP_KEYS, origin, "")
    spec = recipe.get("input")
    if not isinstance(spec, Mapping) or "mean" not in spec or "std" not in spec:
        raise UserError(
            f"recipe {origin}: 'input' must give at least 'mean' and 'std' (three values each, in the "
            f"network's channel order, on the scale of value_range), e.g. {EXAMPLE}"
        )
    _known(spec, INPUT_KEYS, origin, "input.")
    try:
        input_spec = InputSpec.from_metadata({"input": spec})
    except UserError as exc:
        raise UserError(f"recipe {origin}: {exc}") from None
    output = recipe.get("output", {})
    if not isinstance(output, Mapping):
        raise UserError(f'recipe {origin}: \'output\' must be an object like {{"kind": "logits"}}')
    _known(output, OUTPUT_KEYS, origin, "output.")
    kind = output.get("kind", "logits")
    if kind not in KINDS:
        raise UserError(f"recipe {origin}: output.kind {kind!r}: choose one of {KINDS}")
    channels = output.get("channels", list(DEFAULT_CHANNELS))
    if (
        not isinstance(channels, list)
        or len(channels) != NUM_TRAIN_IDS
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in channels)
        or len(set(channels)) != NUM_TRAIN_IDS
    ):
        raise UserError(
            f"recipe {origin}: output.channels must list {NUM_TRAIN_IDS} distinct non-negative channel "
            f"numbers, the one holding each train ID 0..18 in order (e.g. [1, 2, ..., 19] when channel 0 "
            f"is 'unlabeled'); got {channels!r}"
        )
    layout = recipe.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise UserError(f"recipe {origin}: layout {layout!r}: choose one of {LAYOUTS} (or leave it out)")
    return GraphRecipe(input_spec, kind, tuple(channels), layout, origin)


def _known(section: Mapping, keys: set[str], origin: str, prefix: str) -> None:
    unknown = sorted(set(section) - keys)
    if unknown:
        raise UserError(
            f"recipe {origin}: unknown field(s) {', '.join(prefix + k for k in unknown)}; "
            f"known: {', '.join(prefix + k for k in sorted(keys))}"
        )


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read recipe {path}: {exc}") from None
    return _loads(text, str(path))


def _loads(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"recipe {origin} is not valid JSON ({exc}): expected e.g. {EXAMPLE}") from None
