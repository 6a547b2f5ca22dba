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
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bench.engine.convert.files import (
    MAX_PICKLE_BYTES,
    check_entry_size,
    read_entry,
    tensor_array,
)
from bench.files import not_a_file
from data.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage type -> numpy dtype of its elements; BFloat16 has none: read as uint16 and widened to float32
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "UntypedStorage": np.dtype("u1"),
}


class UnsafeCheckpointError(UserError):
    """The file names a global outside the allow-list: it is refused, never called."""


@dataclass(frozen=True)
class StorageType:
    """Stands for `torch.FloatStorage` & co. inside the pickle; calling it builds nothing."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UserError(f"the checkpoint calls torch.{self.name}(...) directly, which no torch.save does")

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError(f"the checkpoint modifies torch.{self.name} (pickle BUILD on a global)")


@dataclass(frozen=True)
class StorageRef:
    """A storage named by the pickle; its bytes are read after unpickling."""

    key: str
    type: StorageType
    numel: int
    view: tuple[str, int, int] | None = None  # legacy views: (view key, offset, size) in elements


@dataclass(frozen=True)
class TensorRef:
    """A tensor named by the pickle: a strided view of a storage, made into an array once bytes are read."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _tensor_ref(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor_ref(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    if not isinstance(data, TensorRef):
        raise UserError("a parameter in the checkpoint does not wrap a tensor")
    return data


def _tensor_ref(storage, offset, size, stride) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise UserError("a tensor in the checkpoint is not backed by a storage")
    try:
        return TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))
    except (TypeError, ValueError) as exc:
        raise UserError(f"a tensor in the checkpoint has a malformed shape or stride ({exc})") from None


def _torch_size(values=()):
    return tuple(int(v) for v in values)


class _Global:
    """An allowed callable as the unpickler hands it out: it can be called, never modified (a pickle's
    BUILD opcode on a global would otherwise set attributes on our functions for later loads)."""

    __slots__ = ("_function", "_name")

    def __init__(self, name: str, function: Callable[..., Any]):
        self._name = name
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError(f"the checkpoint modifies {self._name} (pickle BUILD on a global)")

    def __repr__(self) -> str:
        return self._name


class _NdarrayClass:
    """Stands for `numpy.ndarray` as the argument of `_reconstruct`; calling it builds nothing."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafeCheckpointError("the checkpoint calls numpy.ndarray(...) directly")

    def __setstate__(self, state: Any) -> None:
        raise UnsafeCheckpointError("the checkpoint modifies numpy.ndarray (pickle BUILD on a global)")


_NDARRAY = _NdarrayClass()


def _plain_dtype(value: Any) -> np.dtype:
    dtype = value if isinstance(value, np.dtype) else np.dtype(value)
    if dtype.hasobject:
        raise UnsafeCheckpointError(f"the checkpoint names the numpy dtype {value!r}, which holds objects")
    return dtype


def _numpy_reconstruct(cls, shape, dtype):
    """numpy's `_reconstruct` for plain arrays only (BUILD then fills in their data)."""
    if cls is not _NDARRAY:
        raise UnsafeCheckpointError(f"the checkpoint rebuilds an array of class {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, _plain_dtype(dtype))


def _numpy_scalar(dtype, data=b""):
    dtype = _plain_dtype(dtype)
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(name, align=False, copy=False):
    return _plain_dtype(name)


def _codecs_encode(text, encoding="latin1"):
    """How protocol-2 pickles written by Python 3 spell a bytes object."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"the checkpoint calls _codecs.encode with {encoding!r}")
    return text.encode("latin1")


_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("_codecs", "encode"): _codecs_encode,
    # numbers and arrays in meta dicts (mmengine writes numpy scalars): plain dtypes only, no objects
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{key: _Global(".".join(key), function) for key, function in _FUNCTIONS.items()},
    ("numpy", "ndarray"): _NDARRAY,
    ("torch.storage", "UntypedStorage"): StorageType("UntypedStorage"),
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}
"""(module, name) -> what the unpickler hands out for it; every other global is refused unread."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str, persistent: Callable[[Any], Any] | None):
        super().__init__(file, encoding="latin1")  # py2-era pickles store bytes as str
        self._source = source
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._source} names the global {module}.{name}, which a weights file does not need: "
                "refused without running it (only state dicts of tensors can be read; if you trust the "
                "file, re-save its state_dict with torch.save(model.state_dict(), path))"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UserError(f"{self._source}: unexpected persistent id {pid!r} in a plain pickle")
        return self._persistent(pid)


def _unpickle(stream: BinaryIO, source: str, persistent: Callable[[Any], Any] | None = None) -> Any:
    try:
        return _RestrictedUnpickler(stream, source, persistent).load()
    except UserError as exc:
        if source in str(exc):
            raise
        raise type(exc)(f"{source}: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        struct.error,
        MemoryError,
        RecursionError,
    ) as exc:
        raise UserError(
            f"{source} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def _storage_type(value: Any, source: str) -> StorageType:
    if not isinstance(value, StorageType):
        raise UserError(f"{source}: a storage of unknown type {value!r}")
    return value


def _element_count(nbytes: int, dtype: np.dtype, what: str) -> int:
    if nbytes % dtype.itemsize:
        raise UserError(f"{what} holds {nbytes} bytes, not a whole number of {dtype} elements")
    return nbytes // dtype.itemsize


def _materialise(obj: Any, storage_array: Callable[[StorageRef], np.ndarray]) -> Any:
    """`obj` with every TensorRef replaced by a numpy array (containers rebuilt, the rest unchanged)."""
    if isinstance(obj, TensorRef):
        return tensor_array(obj, storage_array(obj.storage))
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _materialise(v, storage_array)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialise(v, storage_array) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialise(v, storage_array) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(v, storage_array) for v in obj)
    return obj


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
        obj = _unpickle(io.BytesIO(read_entry(path, archive, pickles[0])), str(path), persistent)
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
    if _unpickle(stream, source) != LEGACY_MAGIC:
        raise UserError(f"{path} is neither a zip nor a legacy PyTorch file (no magic number)")
    protocol = _unpickle(stream, source)
    if protocol != LEGACY_PROTOCOL:
        raise UserError(f"{path}: legacy PyTorch protocol {protocol!r} is not supported (expected 1001)")
    sys_info = _unpickle(stream, source)
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
    obj = _unpickle(stream, source, persistent)
    keys = _unpickle(stream, source)
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
    if not path.is_file():
        raise UserError(not_a_file(path))
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
        head = stream.read(2)
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
