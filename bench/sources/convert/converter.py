"""A published PyTorch checkpoint -> a checkpoint of ours: `convert(src, out)`, and `converted(path)`, the
cached form `open_checkpoint` uses (one conversion per file content, under checkpoints/converted/).

SRC is read without torch and without running its pickle's code (torch_reader). The source layout is
detected from the keys (mmsegmentation's PSPNet, ESPNet, ESPNetv2; `source` insists on one), the
architecture from the keys and shapes; the matching registry model is built, every weight of it is set
from the file (the ESPNets' by layer name, torch_layers.py) and every tensor of the file is used
(`num_batches_tracked` counters aside). A missing, extra or mis-shaped tensor is an
error naming its key. DST is an ordinary checkpoint (sources/keras_checkpoint.py) whose metadata records the
source file and hash, the architecture options, the input normalisation and the published test protocol,
so `bench predict` and `bench run` treat it like any other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.paths import CONVERTED_ROOT
from bench.sources.convert import espnet, espnetv2, mmseg, published, torch_reader
from bench.sources.convert.torch_layers import refuse_unplaced
from data.errors import UserError

SOURCES = {mmseg.NAME: mmseg, espnet.NAME: espnet, espnetv2.NAME: espnetv2}
TORCH_SUFFIXES = (".pth", ".pt")


def is_torch_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a PyTorch file to convert rather than a checkpoint of ours (by suffix)."""
    return Path(path).suffix.lower() in TORCH_SUFFIXES


def detect_source(state: Mapping[str, np.ndarray], path: str | os.PathLike, source: str | None = None):
    """The source module whose layout the keys are in (or the one asked for, checked)."""
    if source is not None:
        if source not in SOURCES:
            raise UserError(f"--source {source}: choose one of {', '.join(SOURCES)}")
        if not SOURCES[source].matches(state):
            actual = next((name for name, module in SOURCES.items() if module.matches(state)), None)
            layout = (
                f"its keys are in the {actual} layout: pass --source {actual}"
                if actual
                else ("its keys match no layout this tool knows")
            )
            raise UserError(f"{path} is not a {source} state dict: {layout} (or leave out --source)")
        return SOURCES[source]
    for module in SOURCES.values():
        if module.matches(state):
            return module
    sample = ", ".join(sorted(state)[:4])
    raise UserError(
        f"{path}: no known layout for keys like {sample}: supported are mmsegmentation's PSPNet "
        f"R-18/50/101-D8 (semseg/Caffe layouts are not), ESPNet (sacmehta/ESPNet) and ESPNetv2 (EdgeNets)"
    )


def assign_weights(model, state: Mapping[str, np.ndarray], modules, path: str | os.PathLike) -> int:
    """Set every weight of `model` from `state`; every tensor of `state` must be used. Returns their count."""
    by_layer = {m.layer: m for m in modules}
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        module = by_layer.get(layer.name)
        if module is None:
            raise UserError(f"{path}: no tensor of the checkpoint fills our layer {layer.name}")
        slots = {keras_name: source for source, keras_name in module.slots.items()}
        values = []
        for weight in layer.weights:
            key = f"{module.source}.{slots[weight.name]}"
            if key not in state:
                raise UserError(f"{path} lacks the tensor {key} (for our layer {layer.name})")
            array = mmseg.to_keras(module.kind, slots[weight.name], state[key])
            if tuple(array.shape) != tuple(weight.shape):
                expected = tuple(weight.shape)
                if array.ndim == 4:
                    expected = (expected[3], expected[2], expected[0], expected[1])
                raise UserError(
                    f"{path}: tensor {key} has shape {tuple(state[key].shape)}, the architecture read from "
                    f"the other tensors needs {expected}"
                )
            values.append(array.astype(weight.dtype))
            used.add(key)
        layer.set_weights(values)
    refuse_unplaced(state, used, path)
    return len(used)


def _preset_of(options: Mapping[str, Any]) -> str | None:
    """The `pspnet` preset these options are exactly (for labels; the options alone rebuild the model)."""
    from models.pspnet import PRESETS

    for name in ("mmseg", "mmseg-r101", "mmseg-r18"):
        if options.get("width") == 1.0 and all(options.get(k) == v for k, v in PRESETS[name].items()):
            return name
    return None


def build_converted(
    state: Mapping[str, np.ndarray], src: str | os.PathLike, *, source: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """(model with every weight set from `state`, checkpoint metadata) for the state dict of file `src`."""
    from models import registry

    src = Path(src)
    layout = detect_source(state, src, source)
    if hasattr(layout, "build_converted"):  # sources whose layers are named after theirs (torch_layers.py)
        return layout.build_converted(state, src)
    options, num_classes, has_aux = layout.architecture(state, file_name=src.name)
    try:
        model = registry.build("pspnet", num_classes=num_classes, aux_head=has_aux, **options)
    except ValueError as exc:
        raise UserError(f"{src}: the architecture read from its tensors cannot be built ({exc})") from exc
    used = assign_weights(model, state, layout.modules(options, has_aux=has_aux), src)
    metadata = {
        "model": "pspnet",
        "preset": _preset_of(options),
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        "num_classes": num_classes,
        "aux_head": has_aux,
        "steps": None,
        "input": layout.INPUT.to_dict(),
        "protocol": layout.PROTOCOL,
        "source": {"format": layout.NAME, "file": src.name, "tensors": used},
    }
    return model, metadata


def convert(
    src: str | os.PathLike, out: str | os.PathLike, *, source: str | None = None, digest: str | None = None
) -> dict[str, Any]:
    """Convert `src` into the checkpoint `out` (written atomically); returns its metadata."""
    from bench.sources import keras_checkpoint as ckpt

    src = Path(src)
    state, meta = torch_reader.read_state_dict(src)
    model, metadata = build_converted(state, src, source=source)
    metadata["source"]["sha256"] = digest or published.sha256(src)
    metadata["source"]["meta"] = {
        k: str(v) for k, v in meta.items() if k in ("mmseg_version", "mmcv_version", "time")
    }
    known = published.recognise(src.name, metadata["source"]["sha256"])
    if known is not None:
        metadata["published"] = {"file": known.file_name, "url": known.url, "config": known.config}
    ckpt.save(model, out, metadata)
    return metadata


def converted(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The checkpoint of ours converted from the PyTorch file `path`, made once per file content
    (under `root`, default checkpoints/converted/)."""
    path = Path(path)
    root = CONVERTED_ROOT if root is None else root
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    digest = published.sha256(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    out = Path(root) / f"{stem[:80]}-{digest[:12]}.keras"
    if out.is_file():
        problem = _cache_problem(out, digest)
        if problem is None:
            print(f"checkpoint: {out} (converted from {path.name}, cached)")
            return out
        print(f"checkpoint: the cached {out} is damaged ({problem}): converting again")
    print(f"checkpoint: converting {path} -> {out}")
    convert(path, out, digest=digest)
    return out


def _cache_problem(out: Path, digest: str) -> str | None:
    """Why a cached conversion cannot be trusted (cut short, bit rot, another file's), or None."""
    import zipfile

    from bench.sources import keras_checkpoint as ckpt

    try:
        with zipfile.ZipFile(out) as archive:
            bad = archive.testzip()
        if bad is not None:
            return f"bad CRC in {bad}"
        if ckpt.read_metadata(out).get("source", {}).get("sha256") != digest:
            return "it records another source file"
    except (UserError, zipfile.BadZipFile, OSError, EOFError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None
