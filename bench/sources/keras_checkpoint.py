"""Keras checkpoints: one self-contained `.keras` file that also says how to rebuild its model, and the source
that opens one (`SOURCE`, the catch-all last in opener.py: a `.keras` file or a training folder).

A checkpoint is what `model.save` writes (architecture, weights and, for a compiled model, the optimizer
state) plus one extra zip entry, `bench.json`, with the registry name, preset and options of the model, the
number of classes, the steps done and the training settings. Keras ignores the extra entry, so the file
still opens with `keras.models.load_model`; we instead rebuild the model from the registry and load the
weights by structure, which needs no custom-object deserialisation and restores the optimizer too (resume).

Files are written to a temporary name and renamed, so an interrupted save never leaves half a checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

from bench.sources.opened import OpenedModel, Source
from data.errors import UserError

METADATA_ENTRY = "bench.json"
FORMAT_VERSION = 1
_CKPT_NAME = re.compile(r"^ckpt-(\d+)\.keras$")


def checkpoint_name(step: int) -> str:
    """`ckpt-000500.keras`: names sort in step order."""
    return f"ckpt-{step:06d}.keras"


def save(model, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write `model` (with its optimizer state when compiled) and `metadata` to `path` atomically.

    A write the system refuses (no space, read-only, a folder at `path`) is a UserError naming the file,
    for every checkpoint alike (ckpt-*, best.keras, `bench convert --out`), and leaves no temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps({"format": FORMAT_VERSION, **metadata}, indent=2))
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(
            f"cannot save checkpoint {path} ({exc.strerror or exc}): free space, or choose a writable path "
            f"that is no folder"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


CHECKPOINT_KINDS = (
    "a .keras file, a training --out folder, a PyTorch .pth (mmsegmentation or the ESPNet authors'), a "
    "LiteRT .tflite or a published weights name (`python -m bench weights` lists them)"
)
"""What --checkpoint takes (bench/sources/opener.py SOURCES), named whenever a checkpoint is missing."""


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `bench.json` entry of a checkpoint; `{}` for a plain `.keras` file written elsewhere."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: pass {CHECKPOINT_KINDS}")
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_ENTRY not in archive.namelist():
                return {}
            metadata = json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:  # ValueError: bad JSON or UTF-8
        raise UserError(
            f"checkpoint {path} is not a readable .keras file ({exc}): re-save or re-train it"
        ) from exc
    except OSError as exc:
        raise UserError(f"cannot read checkpoint {path} ({exc.strerror or exc})") from exc
    _check_metadata(path, metadata)
    return metadata


def _check_metadata(path: Path, metadata: Any) -> None:
    """A `bench.json` of the wrong shape is refused here, named, not deep inside a rebuild."""
    expected = {"model": str, "preset": str, "options": dict, "num_classes": int, "steps": int}
    problem = None if isinstance(metadata, dict) else f"a {type(metadata).__name__}, not an object"
    for key, kind in expected.items() if problem is None else ():
        value = metadata.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            problem = f"'{key}' is {value!r}, expected {kind.__name__}"
            break
    if problem is None and isinstance(metadata.get("num_classes"), int) and metadata["num_classes"] < 1:
        problem = f"'num_classes' is {metadata['num_classes']}"
    if problem:
        raise UserError(
            f"checkpoint {path}: its {METADATA_ENTRY} entry is malformed ({problem}); it was not written "
            f"by `bench train` or was edited: re-train it"
        )


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """`ckpt-*.keras` files of a training folder, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m[1]), p) for p in directory.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the latest checkpoint of a training folder (PyTorch files are opened, and
    converted, by bench/sources/opener.py)."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            raise UserError(f"{path} holds no ckpt-*.keras checkpoint: train into it first or pass a file")
        return found[-1]
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: pass {CHECKPOINT_KINDS}")
    return path


def prune(directory: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints of a training folder."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def rebuild(metadata: dict[str, Any], *, aux_head: bool = True, precision: str = "fp32"):
    """A fresh model of the architecture a checkpoint records (weights not loaded), computing in
    `precision` ("fp32", or "bf16": float32 weights, so the checkpoint's weights load as they are)."""
    from models.precision import precision_scope
    from models.registry import build

    if "model" not in metadata:
        raise UserError("checkpoint metadata names no model: it was not written by `bench train`")
    with precision_scope(precision):
        return build(
            metadata["model"],
            num_classes=int(metadata.get("num_classes", 19)),
            preset=metadata.get("preset"),
            aux_head=aux_head and bool(metadata.get("aux_head", True)),  # converted ones may have none
            **dict(metadata.get("options") or {}),
        )


def load_weights(model, path: str | os.PathLike) -> None:
    """Load a checkpoint's weights (and optimizer state, if `model` is compiled) into a rebuilt model.

    On a mismatch Keras warns once per layer before it raises; the error names the file, the warnings
    are dropped. The warnings of a load that works are passed on.
    """
    with warnings.catch_warnings(record=True) as caught:
        try:
            model.load_weights(Path(path))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # OSError: h5py, damaged file
            raise UserError(
                f"checkpoint {path} is damaged: its weights cannot be read ({type(exc).__name__}: {exc}); "
                f"use an earlier checkpoint of its folder or re-train"
            ) from exc
        except (ValueError, KeyError) as exc:
            raise UserError(
                f"checkpoint {path} does not fit the model it names ({_first_lines(exc)}): was the model's "
                f"code or the checkpoint's bench.json changed since it was trained?"
            ) from exc
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _first_lines(exc: Exception) -> str:
    """Keras's mismatch message without the variable values it dumps: its first line and the shapes."""
    text = str(exc)
    first = (text.strip().splitlines()[0] if text.strip() else type(exc).__name__).rstrip(":")
    shapes = re.search(r"variable\.shape=\([^)]*\), Received: value\.shape=\([^)]*\)", text)
    return f"{first}: {shapes[0]}" if shapes else first


def open_keras(name, *, precision: str, fold_bn: bool, cache=None) -> OpenedModel:
    """A checkpoint of `bench train` (rebuilt from the registry, weights loaded) or a plain `.keras` file
    from elsewhere (loaded as saved: its custom layers must be importable and registered)."""
    import keras

    from models.precision import check_precision

    path = resolve(name)
    metadata = read_metadata(path)
    if check_precision(precision) != "fp32" and not metadata.get("model"):
        raise UserError(
            f"{path} is a plain .keras file, saved with its own dtypes: --precision {precision} needs a "
            f"checkpoint that names its registry model (written by `bench train`); use --precision fp32"
        )
    if metadata.get("model"):
        model = rebuild(metadata, aux_head=True, precision=precision)
        load_weights(model, path)
    else:
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for unreadable or foreign files
            raise UserError(f"cannot load {path} as a Keras model ({type(exc).__name__}: {exc})") from exc
        # `plain`: no bench.json, so no registry model, recipe or steps to report (rows leave them out)
        metadata = {"model": model.name, "num_classes": None, "steps": None, "plain": True}
    output = model.output
    if isinstance(output, dict):
        model = keras.Model(model.input, output["logits"], name=f"{model.name}_logits")
    metadata["checkpoint"] = str(path)
    metadata["precision"] = precision
    metadata["folded_bn"] = False
    if fold_bn:
        from models.batchnorm_folding import fold_batchnorm

        try:
            model, metadata["folded_bn"] = fold_batchnorm(model), True
        except Exception as exc:  # a plugin's layers may not round-trip through get_config
            warnings.warn(
                f"{path}: BatchNorm not folded ({type(exc).__name__}: {exc}); predicting unfolded",
                stacklevel=3,
            )
    return OpenedModel(model, metadata)


SOURCE = Source("keras", lambda name: True, open_keras)
