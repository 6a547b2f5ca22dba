"""`open_checkpoint(name)` -> an `OpenedModel`: the one place that chooses how a model comes in.

A source is one kind of thing a user may name, one module each in this folder: a PyTorch `.pth` (pytorch.py,
converted once), a LiteRT `.tflite` file (litert.py, recognised by its content), a published weights name of
`bench weights` (download.py: the checked file, downloaded first), an ONNX file (onnx.py, on ONNX Runtime or
OpenVINO) or an OpenVINO IR (openvino.py), and a `.keras` checkpoint or a training
folder (keras_checkpoint.py, the catch-all). `SOURCES` is tried in order, the first whose `matches` accepts
the name opens it: a new kind is one module with a `SOURCE` and one line here, before the catch-all.
"""

from __future__ import annotations

import os

from bench.sources import download, keras_checkpoint, litert, onnx, openvino, pytorch
from bench.sources.opened import OpenedModel, Source, SourceOptions, as_opened
from data.errors import UserError
from data.files import check_file, read_head, what_it_holds

__all__ = [
    "HOLDS",
    "SOURCES",
    "OpenedModel",
    "Source",
    "SourceOptions",
    "as_opened",
    "check_checkpoint_path",
    "open_checkpoint",
]

SOURCES: list[Source] = [
    pytorch.SOURCE,
    litert.SOURCE,
    onnx.SOURCE,
    openvino.SOURCE,
    download.SOURCE,
    keras_checkpoint.SOURCE,  # last: a .keras file or a training folder
]


def open_checkpoint(
    path: str | os.PathLike,
    *,
    precision: str = "fp32",
    fold_bn: bool = False,
    cache: str | os.PathLike | None = None,
    options: SourceOptions | None = None,
) -> OpenedModel:
    """The model `path` names, ready to predict: a `.keras` checkpoint, a training folder (its latest
    checkpoint), a PyTorch `.pth` (converted once into `cache`, default checkpoints/converted/), a LiteRT
    file or a published weights name.

    `precision` "bf16" rebuilds the model under Keras' mixed_bfloat16 policy (models/precision.py; weights
    stay float32); `fold_bn` merges BatchNorm into the convolutions (same outputs to float rounding, faster;
    a model that cannot be folded is used as it is, with a warning). `options`: how an exported graph runs
    (runtime, providers, threads, recipe); a source of another kind refuses any of them set.
    """
    name = os.fspath(path)
    check_checkpoint_path(name)
    for source in SOURCES:
        if source.matches(name):
            extra = {}
            if source.takes_options:
                extra["options"] = options
            elif options is not None and options.given():
                raise UserError(
                    f"{' '.join(options.given())} apply to an exported graph (.onnx, OpenVINO .xml), "
                    f"not to {name} ({source.name})"
                )
            opened = source.open(name, precision=precision, fold_bn=fold_bn, cache=cache, **extra)
            if isinstance(opened, OpenedModel):
                return opened
            return open_checkpoint(opened, precision=precision, fold_bn=fold_bn, cache=cache, options=options)
    raise UserError(f"no source opens {name}")  # unreachable: the Keras source takes everything


HOLDS: dict[str, tuple[str, ...]] = {
    ".keras": ("a zip archive",),
    ".pth": ("a zip archive", "a pickle"),
    ".pt": ("a zip archive", "a pickle"),
    ".tflite": ("a LiteRT",),
    ".h5": ("an HDF5 file",),
}
"""What a checkpoint named by each extension may hold (`what_it_holds`' words): a source of another branch
adds its extension here (its reader still judges a file that holds nothing recognisable)."""


def check_checkpoint_path(name: str) -> None:
    """A checkpoint path that exists must be a folder (a training folder) or a readable regular file whose
    contents fit its extension: a FIFO, a device, a link loop, an unreadable file or a PNG named `.tflite`
    is named for what it is, before any source reads it. Names that are no path (weights names) pass."""
    if not os.path.lexists(name) or os.path.isdir(name):
        return
    check_file(name, "checkpoint")
    suffix = os.path.splitext(name)[1].lower()
    allowed = HOLDS.get(suffix)
    holds = what_it_holds(read_head(name))
    recognised = not holds.startswith(("text", "unrecognised", "JSON", "nothing"))
    if allowed and recognised and not holds.startswith(allowed):
        raise UserError(
            f"checkpoint {name} is not a readable {suffix} file: it holds {holds}; give the {suffix} "
            f"file itself (or rename it for what it holds)"
        )
