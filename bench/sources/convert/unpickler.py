"""The allow-list unpickler of the `.pth` reader: the globals a state dict needs and nothing else, tensors as
references into storages (never torch objects), any other global refused by name before anything runs."""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from data.errors import UserError

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


def unpickle(stream: BinaryIO, source: str, persistent: Callable[[Any], Any] | None = None) -> Any:
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
