"""PyTorch `.pth` files as a model source: converted once into a checkpoint of ours (bench/sources/convert/),
cached by content hash under `checkpoints/converted/`, then opened as that Keras checkpoint."""

from __future__ import annotations

from pathlib import Path

from bench.sources.keras_checkpoint import open_keras
from bench.sources.opened import OpenedModel, Source


def is_torch(name: str) -> bool:
    from bench.sources.convert.converter import is_torch_checkpoint

    return is_torch_checkpoint(name) and Path(name).is_file()


def open_torch(name: str, *, precision: str, fold_bn: bool, cache) -> OpenedModel:
    from bench.sources.convert.converter import converted

    return open_keras(converted(name, root=cache), precision=precision, fold_bn=fold_bn, cache=cache)


SOURCE = Source("pytorch", is_torch, open_torch)
