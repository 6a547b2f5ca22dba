"""The recipe an exported file carries: what the graph cannot say (issue 27's format, exactly).

    {"input":  InputSpec with every key (data/normalization.py), "output": {"kind": "logits",
     "channels": [0, ..., 18]}, "layout": "NHWC"}

ONNX files hold it in `metadata_props` under `cityscapes_bench`, OpenVINO IR in its `rt_info` under the same
key, a LiteRT file (no metadata the runtime reads) in the sidecar `FILE.json` beside it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from data.normalization import InputSpec

METADATA_KEY = "cityscapes_bench"
NUM_TRAIN_IDS = 19
LAYOUT = "NHWC"  # Keras exports keep the Keras layout: (1, H, W, 3) in, (1, H, W, C) out


def input_recipe(spec: InputSpec) -> dict[str, Any]:
    """Every key of the input recipe, defaults written out (a reader needs to guess nothing)."""
    return {
        "mean": list(spec.mean),
        "std": list(spec.std),
        "channel_order": spec.channel_order,
        "value_range": spec.value_range,
        "divisor": spec.divisor,
        "size": None if spec.size is None else list(spec.size),
        "order": spec.order,
        "resize": spec.resize,
        "output_resize": spec.output_resize,
    }


def recipe(spec: InputSpec) -> dict[str, Any]:
    """The recipe of a Keras model's export: its input spec, logits whose channels 0..18 are the train IDs
    (a 20th background channel is left out), NHWC."""
    return {
        "input": input_recipe(spec),
        "output": {"kind": "logits", "channels": list(range(NUM_TRAIN_IDS))},
        "layout": LAYOUT,
    }


def sidecar(path: str | os.PathLike) -> Path:
    """`FILE.json` beside `FILE` (the file name with `.json` added), as the ONNX source looks it up."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def embed_onnx(path: Path, text: str) -> None:
    """Write `text` into the ONNX file's `metadata_props` under `METADATA_KEY` (replacing an old entry)."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=text)
    onnx.save(model, str(path))


def read_onnx(path: str | os.PathLike) -> dict[str, Any] | None:
    """The recipe embedded in an ONNX file, None where it has none."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None
