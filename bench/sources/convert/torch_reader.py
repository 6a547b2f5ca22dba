"""Read PyTorch checkpoints (`.pth`) into numpy arrays without torch, and without running their code.

A `.pth` file is a pickle, and unpickling runs whatever callables the file names. This reader unpickles
with an allow-list of the globals a state dict needs (OrderedDict, the storage types, the tensor rebuild
functions, the plain numpy reconstructors that meta dicts may hold) and refuses any other global with a
`UserError` naming it, before anything is called. Tensors never become torch objects: storages are read
as bytes into numpy arrays and views are cut from them with checked bounds.

Both formats torch writes:
- zip (torch >= 1.6): `<folder>/data.pkl` (the folder name varies) and one entry `<folder>/data/<key>` per
  storage; `<folder>/byteorder` says "little" or "big" (absent = little);
- legacy (torch < 1.6, or `_use_new_zipfile_serialization=False`): five pickles in a row, the magic
  number, the protocol version, sys_info, the object (storages as persistent ids), the list of storage
  keys, then each storage in that order as an int64 element count and the raw bytes (little endian).

`read_state_dict` unwraps `{"state_dict": ...}` (mmcv/mmengine, with "meta") and strips `module.`
prefixes (DataParallel).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bench.sources.convert.files import (
    MAX_PICKLE_BYTES,
    check_entry_size,
    read_entry,
    tensor_array,
)
from bench.sources.convert.unpickler import StorageRef, StorageType, TensorRef, unpickle
from data.errors import UserError
from data.files import check_file

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage type -> numpy dtype of its elements; BFloat16 has none: read as uint16 and widened to float32


"""(module, name) -> what the unpickler hands out for it; every other global is refused unread."""


def _storage_type(value: Any, source: str) -> StorageType:
    if not isinstance(value, StorageType):
        raise UserError(f"{source}: a storage of unknown type {value!r}")
    return value


def _element_count(nbytes: int, dtype: np.dtype, what: str) -> int:
    if nbytes % dtype.itemsize:
        raise UserError(f"{what} holds {nbytes} bytes, not a whole number of {dtype} elements")
    return nbytes // dtype.itemsize


MAX_DEPTH = 64
"""Containers a checkpoint nests (a state dict inside a wrapper is 2 or 3 deep): deeper is no checkpoint,
and walking it would overflow Python's stack (a 200,000-deep list did)."""


def _materialise(obj: Any, storage_array: Callable[[StorageRef], np.ndarray]) -> Any:
    """`obj` with every TensorRef replaced by a numpy array (containers rebuilt, the rest unchanged).

    Each container is rebuilt once however often it is shared (a "billion laughs" of 40 levels of shared
    lists has 2**40 leaves as a tree but 40 containers), and nesting deeper than MAX_DEPTH is refused."""
    memo: dict[int, Any] = {}

    def walk(node: Any, depth: int) -> Any:
        if isinstance(node, TensorRef):
            return tensor_array(node, storage_array(node.storage))
        if not isinstance(node, (dict, list, tuple)):
            return node
        if id(node) in memo:
            return memo[id(node)]
        if depth > MAX_DEPTH:
            raise UserError(
                f"nests containers more than {MAX_DEPTH} deep: not a checkpoint (a state dict is 2 or 3 deep)"
            )
        if isinstance(node, dict):
            rebuilt = type(node)() if isinstance(node, OrderedDict) else {}
            memo[id(node)] = rebuilt
            for k, v in node.items():
                rebuilt[k] = walk(v, depth + 1)
        elif isinstance(node, list):
            rebuilt = []
            memo[id(node)] = rebuilt
            rebuilt.extend(walk(v, depth + 1) for v in node)
        else:
            rebuilt = tuple(walk(v, depth + 1) for v in node)
            memo[id(node)] = rebuilt
        return rebuilt

    return walk(obj, 0)


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise UserError(
                f"{path} is a zip file but not a PyTorch checkpoint (expected one <folder>/data.pkl, "
                f"found {len(pickles)})"
            )
        prefix = pickles[0][: -len("data.pkl")]
        order = "<"
        if prefix + "byteorder" in names:
            text = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if text not in ("little", "big"):
                raise UserError(f"{path}: unknown byte order {text!r}")
            order = "<" if text == "little" else ">"
        refs: dict[str, StorageRef] = {}

        def persistent(pid: Any) -> StorageRef:
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise UserError(f"{path}: unexpected persistent id {pid!r}")
            _, storage_type, key, _location, numel = pid
            ref = StorageRef(str(key), _storage_type(storage_type, str(path)), int(numel))
            refs.setdefault(ref.key, ref)
            return ref

        check_entry_size(path, archive.getinfo(pickles[0]), MAX_PICKLE_BYTES)
        obj = unpickle(io.BytesIO(read_entry(path, archive, pickles[0])), str(path), persistent)
        cache: dict[str, np.ndarray] = {}

        def storage_array(ref: StorageRef) -> np.ndarray:
            if ref.key not in cache:
                entry = f"{prefix}data/{ref.key}"
                if entry not in names:
                    raise UserError(f"{path} lacks the storage entry {entry}: the file is truncated")
                dtype = ref.type.dtype.newbyteorder(order)
                check_entry_size(path, archive.getinfo(entry), ref.numel * dtype.itemsize)
                data = read_entry(path, archive, entry)
                count = _element_count(len(data), dtype, entry)
                cache[ref.key] = np.frombuffer(data, dtype=dtype, count=count)
            return cache[ref.key]

        return _materialise(obj, storage_array)


def _read_legacy(path: Path, stream: BinaryIO) -> Any:
    source = str(path)
    if unpickle(stream, source) != LEGACY_MAGIC:
        raise UserError(f"{path} is neither a zip nor a legacy PyTorch file (no magic number)")
    protocol = unpickle(stream, source)
    if protocol != LEGACY_PROTOCOL:
        raise UserError(f"{path}: legacy PyTorch protocol {protocol!r} is not supported (expected 1001)")
    sys_info = unpickle(stream, source)
    if isinstance(sys_info, Mapping) and sys_info.get("little_endian") is False:
        raise UserError(f"{path} was written on a big-endian machine, which this reader does not support")
    roots: dict[str, StorageRef] = {}

    def persistent(pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise UserError(f"{path}: persistent id of kind {kind!r} (a pickled module?) cannot be read")
        _, storage_type, key, _location, numel, view = pid
        ref = StorageRef(str(key), _storage_type(storage_type, source), int(numel))
        roots.setdefault(ref.key, ref)
        if view is None:
            return roots[ref.key]
        view_key, offset, size = view
        return StorageRef(str(view_key), ref.type, int(size), (ref.key, int(offset), int(size)))

    size = os.fstat(stream.fileno()).st_size
    obj = unpickle(stream, source, persistent)
    keys = unpickle(stream, source)
    if not isinstance(keys, list) or set(map(str, keys)) != set(roots):
        raise UserError(f"{path}: the storage key list does not match the storages the object names")
    arrays: dict[str, np.ndarray] = {}
    for key in map(str, keys):
        ref = roots[key]
        header = stream.read(8)
        if len(header) != 8:
            raise UserError(f"{path} ends before storage {key}: the file is truncated")
        (numel,) = struct.unpack("<q", header)
        if numel != ref.numel:
            raise UserError(f"{path}: storage {key} holds {numel} elements, the object names {ref.numel}")
        nbytes = numel * ref.type.dtype.itemsize
        if nbytes > size - stream.tell():  # checked before reading: the count may declare terabytes
            raise UserError(f"{path} ends inside storage {key}: the file is truncated")
        data = stream.read(nbytes)
        if len(data) != nbytes:
            raise UserError(f"{path} ends inside storage {key}: the file is truncated")
        arrays[key] = np.frombuffer(data, dtype=ref.type.dtype, count=numel)

    def storage_array(ref: StorageRef) -> np.ndarray:
        if ref.view is None:
            return arrays[ref.key]
        root, offset, size = ref.view
        base = arrays[root]
        if offset < 0 or size < 0 or offset + size > base.size:
            raise UserError(f"{path}: storage view {ref.key} lies outside storage {root}")
        return base[offset : offset + size]

    return _materialise(obj, storage_array)


def load(path: str | os.PathLike) -> Any:
    """The object a `.pth` file holds, tensors as numpy arrays; refuses globals outside the allow-list."""
    path = Path(path)
    check_file(path, "checkpoint", allow_empty=True)  # kind, loops, links, readable: the one path check
    try:
        return _load(path)
    except UserError as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def _load(path: Path) -> Any:
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with open(path, "rb") as stream:
        head = stream.read(4)
        if head == b"PK\x03\x04":  # a zip whose end (its central directory) is missing
            raise UserError(
                f"{path} is a truncated or damaged zip archive (its central directory is missing): "
                "download or copy it again"
            )
        if len(head) < 2 or head[0] != 0x80:  # every torch.save pickle starts with the PROTO opcode
            raise UserError(
                f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle stream); "
                "tar-format files from torch < 0.4 are not supported"
            )
        stream.seek(0)
        return _read_legacy(path, stream)


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(state dict name -> array, meta dict) of a `.pth` file.

    Accepts a bare state dict or a wrapper with "state_dict" (mmcv/mmengine: {"meta", "state_dict",
    "optimizer"?}) or "model"; strips a `module.` prefix present on every key (DataParallel).
    """
    obj = load(path)
    if not isinstance(obj, Mapping):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict")
    meta: dict[str, Any] = {}
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), Mapping):
            meta = dict(obj.get("meta") or {}) if isinstance(obj.get("meta"), Mapping) else {}
            obj = obj[wrapper]
            break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, np.ndarray):
            raise UserError(f"{path}: state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        state[str(key)] = value
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, meta
