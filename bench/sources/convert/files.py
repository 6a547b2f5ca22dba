"""The file-level checks of the .pth reader: what a path is when it is no file, and zip entries read only
when their declared size is one a weights file can have (a zip bomb is refused before unpacking), and
tensors made only from views that stay inside their storage."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from data.errors import UserError

MAX_PICKLE_BYTES = 256 << 20  # a state dict's pickle (names and shapes) is kilobytes; its tensors are apart
MAX_COMPRESSION = 50  # torch.save stores entries uncompressed; float weights deflate by 1.2x at most


def check_entry_size(path: Path, info: zipfile.ZipInfo, limit: int) -> None:
    """Refuse, before reading, an entry that would unpack into more bytes than it may hold (a zip bomb)."""
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limit or (info.compress_type != zipfile.ZIP_STORED and ratio > MAX_COMPRESSION):
        raise UserError(
            f"{path}: entry {info.filename} declares {info.file_size} bytes from {info.compress_size} "
            f"compressed (the tensors it holds need at most {limit}): the file is corrupt or a zip bomb; "
            f"refused before unpacking"
        )


def read_entry(path: Path, archive: zipfile.ZipFile, entry: str) -> bytes:
    try:
        return archive.read(entry)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise UserError(f"{path}: entry {entry} cannot be read ({exc}): the file is damaged") from None


def tensor_array(ref, storage: np.ndarray) -> np.ndarray:
    """The strided view `ref` describes, bounds-checked (a corrupt stride must not read past the storage)."""
    if len(ref.size) != len(ref.stride) or min((*ref.size, *ref.stride, ref.offset, 0)) < 0:
        raise UserError(f"tensor of size {ref.size}, stride {ref.stride}: malformed")
    count = math.prod(ref.size)
    if count > storage.size:  # a stride-0 view would be allocated in full: a few bytes declaring terabytes
        raise UserError(
            f"tensor of size {ref.size} declares {count} elements over a storage of {storage.size}: the file "
            f"is corrupt or hostile (refused before allocating)"
        )
    if 0 in ref.size:
        out = np.zeros(ref.size, storage.dtype)
    else:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
        if last >= storage.size:
            raise UserError(
                f"tensor of size {ref.size} at offset {ref.offset} reaches element {last} of a storage of "
                f"{storage.size}: the file is truncated or corrupt"
            )
        view = np.lib.stride_tricks.as_strided(
            storage[ref.offset :],
            shape=ref.size,
            strides=tuple(s * storage.itemsize for s in ref.stride),
            writeable=False,
        )
        out = np.array(view)  # a contiguous copy that owns its memory
    if ref.storage.type.name == "BFloat16Storage":  # the upper half of a float32
        return (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="))
