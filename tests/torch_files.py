"""PyTorch checkpoint files written without torch, for the fault matrix of `bench convert`.

`write_pth` lays a state dict out as `torch.save` does (zip format: `<name>/data.pkl` + `<name>/data/<key>`;
legacy format: magic, protocol, system info, object, key list, raw storages), with every field open to
corruption: a tensor's declared size and stride, a storage's declared element count, its bytes.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.sources.convert.torch_reader import LEGACY_MAGIC, LEGACY_PROTOCOL

STORAGE_OF = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage"}


@dataclass
class Tensor:
    """A tensor as the pickle names it: storage `key` holding `data`, seen with `size`/`stride`."""

    key: str
    data: np.ndarray
    size: tuple[int, ...] | None = None  # default: data's shape
    stride: tuple[int, ...] | None = None  # default: contiguous
    offset: int = 0
    numel: int | None = None  # the storage's declared element count (default: data.size)


@dataclass
class _Storage:
    key: str
    kind: str
    numel: int


@contextlib.contextmanager
def _fake_torch() -> Iterator[dict]:
    """Modules `torch` and `torch._utils` for the pickler to name (removed afterwards)."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    classes = {}
    for name in ("FloatStorage", "LongStorage"):
        classes[name] = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, classes[name])
    torch._utils = utils
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield {"rebuild": _rebuild_tensor_v2, **classes}
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _pickle(obj, torch: dict, legacy: bool) -> bytes:
    class Reduced:
        def __init__(self, t: Tensor):
            self.t = t

        def __reduce__(self):
            t = self.t
            size = t.data.shape if t.size is None else t.size
            stride = t.stride
            if stride is None:
                stride = tuple(int(np.prod(size[i + 1 :])) for i in range(len(size)))
            storage = _Storage(t.key, STORAGE_OF[t.data.dtype], t.data.size if t.numel is None else t.numel)
            return (torch["rebuild"], (storage, t.offset, tuple(size), tuple(stride), False, OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if isinstance(value, _Storage):
                pid = ("storage", torch[value.kind], value.key, "cpu", value.numel)
                return pid + (None,) if legacy else pid
            return None

    def wrap(value):
        if isinstance(value, Tensor):
            return Reduced(value)
        if isinstance(value, dict):
            return OrderedDict((k, wrap(v)) for k, v in value.items())
        if isinstance(value, list):
            return [wrap(v) for v in value]
        return value

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(wrap(obj))
    return buffer.getvalue()


def tensors_of(obj) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict | list):
        return [t for v in (obj.values() if isinstance(obj, dict) else obj) for t in tensors_of(v)]
    return []


def write_pth(path: Path, obj, *, fmt: str = "zip", compress: bool = False) -> Path:
    """Write `obj` (dicts of `Tensor`s and plain values) as torch.save would, in `fmt` ("zip"/"legacy")."""
    with _fake_torch() as torch:
        data = _pickle(obj, torch, legacy=fmt == "legacy")
    path.parent.mkdir(parents=True, exist_ok=True)
    storages = {t.key: t.data for t in tensors_of(obj)}
    if fmt == "zip":
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(path, "w", method) as archive:
            archive.writestr("archive/data.pkl", data)
            archive.writestr("archive/byteorder", "little")
            for key, array in storages.items():
                archive.writestr(f"archive/data/{key}", array.tobytes())
            archive.writestr("archive/version", "3\n")
        return path
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            f.write(pickle.dumps(header, protocol=2))
        f.write(data)
        f.write(pickle.dumps(list(storages), protocol=2))
        declared = {t.key: (t.data.size if t.numel is None else t.numel) for t in tensors_of(obj)}
        for key, array in storages.items():
            f.write(struct.pack("<q", declared[key]))
            f.write(array.tobytes())
    return path
