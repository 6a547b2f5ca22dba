"""LiteRT (`.tflite`) files as a model source, recognised by their content: the interpreter
(bench/sources/litert_runtime.py) runs the frame, this module makes it an `OpenedModel`."""

from __future__ import annotations

from pathlib import Path

from bench.sources.litert_runtime import RAW_PIXELS, LiteRTModel, is_litert
from bench.sources.opened import OpenedModel, Source
from data.errors import UserError


def is_litert_file(name: str) -> bool:
    return Path(name).is_file() and is_litert(name)


def open_litert_file(name: str, *, precision: str, fold_bn: bool, cache) -> OpenedModel:
    """An `OpenedModel` whose forward runs the interpreter's `frame_outputs` on the frame.

    The loop decodes frames with the identity recipe (0..255 RGB as read: metadata "input"), since the
    model's own recipe is applied by bench/sources/litert_runtime.py; the file's published name
    (bench/sources/weights.py, by SHA-256) names the model when it is one. `fold_bn` and `cache` do not
    apply to a LiteRT file."""
    import numpy as np

    from bench.sources.convert.published import sha256
    from bench.sources.weights import by_sha256
    from models.precision import check_precision

    if check_precision(precision) != "fp32":
        raise UserError(
            f"{name} is a LiteRT model, run in its own dtypes: --precision {precision} does not apply"
        )
    from bench.sources.graph_recipe import sidecar

    if sidecar(name).is_file():
        return _with_recipe(name)
    model = LiteRTModel(name)
    digest = sha256(model.path)
    published = by_sha256(digest)
    metadata = {
        **model.metadata,
        "model": published.name if published else model.path.stem,
        "weights": published.name if published else None,
        "sha256": digest,
        "input": RAW_PIXELS.to_dict(),
        "precision": "int8" if model.input_quantization else "fp32",
        "folded_bn": False,
    }

    def forward(images, stride: tuple[int, int] | None = None) -> np.ndarray:
        train_ids, logits = model.frame_outputs(np.asarray(images)[0], stride=stride)
        return (train_ids if logits is None else logits)[None]

    outputs = "train_ids" if model.output_kind == "argmax" else "logits"
    return OpenedModel(None, metadata, forward=forward, outputs=outputs, strided=model.input_size is not None)


def _with_recipe(name: str) -> OpenedModel:
    """A LiteRT file with a recipe beside it (`FILE.tflite.json`, what `bench export` writes): the loop
    prepares the input as the recipe says (normalised, at its size) and the interpreter runs it as it is;
    the recipe's output channels are the train IDs. Quantised kernels behind a float input say int8."""
    import numpy as np

    from bench.sources.graph_recipe import find_recipe

    recipe = find_recipe(name, None, None)
    model = LiteRTModel(name)
    if model.input_dtype.kind != "f" or recipe.kind != "logits":
        raise UserError(
            f"{name}: a recipe beside a LiteRT file applies to float input and logits output (what "
            f"`bench export` writes); remove {name}.json to run the file by its own quantisation"
        )
    tensors = model._interpreter.get_tensor_details()
    quantised = any(np.dtype(t["dtype"]) == np.int8 for t in tensors)
    channels = list(recipe.channels)
    metadata = {
        **model.metadata,
        "input": recipe.input.to_dict(),
        "recipe": recipe.origin,
        "precision": "int8" if quantised else "fp32",
        "folded_bn": False,
    }

    def forward(images) -> np.ndarray:
        return model.invoke(np.ascontiguousarray(images, model.input_dtype))[None][..., channels]

    return OpenedModel(None, metadata, forward=forward, outputs="logits")


SOURCE = Source("litert", is_litert_file, open_litert_file)
