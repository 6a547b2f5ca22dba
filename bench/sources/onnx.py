"""ONNX (`.onnx`) files as a model source, run by ONNX Runtime (default) or OpenVINO (`--runtime openvino`).

The file is checked before any runtime loads it (bench/sources/onnx_checks.py), its recipe found
(bench/sources/graph_recipe.py: `--recipe`, `MODEL.onnx.json`, the `cityscapes_bench` metadata entry), and
the graph read with it (bench/sources/graph_model.py). The loop normalises the frames by the recipe's
`input` (metadata "input"), as it does for a checkpoint; the forward pass needs no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from bench.sources.opened import OpenedModel, Source, SourceOptions
from data.errors import UserError


def is_onnx_name(name: str) -> bool:
    return name.lower().endswith(".onnx")


def open_graph(
    path: Path, recipe, runner, *, precision: str, checked_sha256: str | None = None
) -> OpenedModel:
    """An `OpenedModel` of a graph `runner` read with `recipe` (the ONNX and OpenVINO IR sources')."""
    import numpy as np

    from bench.sources.convert.published import sha256
    from bench.sources.graph_model import GraphModel
    from models.precision import check_precision

    if check_precision(precision) != "fp32":
        raise UserError(
            f"{path} is an exported graph, run in its own dtypes: --precision {precision} does not apply"
        )
    model = GraphModel(runner, recipe, path)
    metadata = {
        **model.metadata,
        "checkpoint": str(path),
        "model": path.stem,
        "sha256": checked_sha256 or sha256(path),
        "input": recipe.input.to_dict(),
        "precision": "fp32",
        "folded_bn": False,
    }

    def forward(images, stride: tuple[int, int] | None = None) -> np.ndarray:
        return model.frame_outputs(np.asarray(images, np.float32)[0], stride=stride)[None]

    return OpenedModel(
        None,
        metadata,
        forward=forward,
        outputs="train_ids" if recipe.kind == "train_ids" else "logits",
        strided=model.slides,
    )


def open_onnx_file(
    name: str, *, precision: str, fold_bn: bool, cache, options: SourceOptions | None = None
) -> OpenedModel:
    """Check `name`, find its recipe and open it on `options.runtime` (onnxruntime by default)."""
    from bench.sources.graph_recipe import METADATA_KEY, find_recipe
    from bench.sources.graph_runtimes import make_runner
    from bench.sources.onnx_checks import checked_onnx

    options = options or SourceOptions()
    path = Path(name)
    if not path.is_file():
        raise UserError(f"ONNX model {path} does not exist: pass an .onnx file")
    proto = checked_onnx(path)
    embedded = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    recipe = find_recipe(path, options.recipe, embedded)
    del proto
    runner = make_runner(
        options.runtime or "onnxruntime", path, providers=options.providers, threads=options.threads
    )
    return open_graph(path, recipe, runner, precision=precision)


SOURCE = Source("onnx", is_onnx_name, open_onnx_file, takes_options=True)
