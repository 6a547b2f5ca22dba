"""The one check of a path before it is read: what it is (a regular file, not a folder, a pipe, a device, a
link loop or a broken link), how large, readable, and, from its first bytes, what it holds.

Every reader of the project goes through `check_file` (a path about to be handed to a library) or
`read_file` (the bytes themselves). `read_file` opens without blocking and checks the open descriptor, so a
FIFO never hangs a reader and `/dev/zero` behind a link never fills memory, and a file swapped between the
check and the read is still caught. It lives in `data/` (the bottom layer) so that dataset readers can use
it, and the rest of the harness imports it from here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from data.errors import UserError

MAX_FILE_BYTES = 8 << 30
"""No file the harness reads whole is larger (a checkpoint of the zoo is < 1 GiB): a larger one is refused
with its size rather than read into memory."""

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a zip archive (.keras, .pth, .zip)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras 2 .h5 checkpoint)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x80\x02", "a pickle (an old-style torch .pth)"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
)


def describe_kind(path: Path) -> str | None:
    """What `path` is when it is no readable regular file ("a folder", "a FIFO", ...), None when it is one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a broken symbolic link (to {os.readlink(path)})"
        return "missing (no such file)"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno == errno.EACCES:
            return "not readable (permission denied on a folder above it)"
        return f"not readable ({exc.strerror})"
    kind = _kind_of_mode(mode)
    if kind is not None:
        return kind
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def not_a_file(path: Path, what: str = "checkpoint") -> str:
    """Why `path` cannot be read as a file, and the fix (for a path where reading it as one fails)."""
    kind = describe_kind(Path(path)) or "not readable"
    if kind.startswith("missing"):
        return f"{what} {path} does not exist"
    fix = "point the link at the file" if "link" in kind else "give the file itself"
    if "permission" in kind:
        fix = "make it readable (chmod) or give another copy"
    return f"{what} {path} is {kind}: {fix}"


def check_file(
    path: str | os.PathLike,
    what: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    allow_empty: bool = False,
    fix: str | None = None,
) -> int:
    """Raise UserError unless `path` is a readable regular file of at most `max_bytes` (and not empty,
    unless `allow_empty`); return its size. `what` names it ("prediction", "--weights file"), `fix` is
    added to the size and emptiness messages."""
    path = Path(path)
    kind = describe_kind(path)
    if kind is not None:
        raise UserError(not_a_file(path, what))
    size = os.stat(path).st_size
    _check_size(path, what, size, max_bytes, allow_empty, fix)
    return size


def read_file(
    path: str | os.PathLike,
    what: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    allow_empty: bool = True,
    fix: str | None = None,
) -> bytes:
    """The bytes of `path`, read only once the open descriptor is known to be a regular file of at most
    `max_bytes`: a UserError naming `what` and the kind otherwise (never a hang, a MemoryError or an
    OSError)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        kind = describe_kind(path)
        detail = f" ({kind})" if kind and not kind.startswith(("missing", "not readable")) else ""
        raise UserError(
            f"cannot read {what} {path}: {exc.strerror}{detail}; check the file exists and is readable"
        ) from None
    try:
        info = os.fstat(fd)
        kind = _kind_of_mode(info.st_mode)
        if kind is not None:
            reason = "Is a directory" if stat.S_ISDIR(info.st_mode) else f"it is {kind}"
            raise UserError(f"cannot read {what} {path}: {reason}; give the file itself")
        _check_size(path, what, info.st_size, max_bytes, allow_empty, fix)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(max_bytes + 1)
        _check_size(path, what, len(data), max_bytes, True, fix)  # it grew since the fstat
        return data
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)


def content_digest(entries: Iterable[tuple[str, str | os.PathLike]], what: str = "frame file") -> str:
    """Hex SHA-256 over (label, file contents) pairs, in order: what a list of files holds, for keys of
    sweeps, caches and result rows that must change when the pixels do, not only when the names do."""
    digest = hashlib.sha256()
    for label, path in entries:
        check_file(path, what, allow_empty=True)
        digest.update(len(label).to_bytes(4, "big") + label.encode())
        try:
            with open(path, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        except OSError as exc:
            raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def what_it_holds(head: bytes) -> str:
    """A file's contents in words from its first bytes ("a PNG image", "text", "empty"), for a file whose
    extension promises something else."""
    if not head:
        return "nothing (0 bytes)"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if head[4:8] == b"TFL3":
        return "a LiteRT (.tflite) model"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON or other text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    return "text"


def read_head(path: str | os.PathLike, n: int = 16) -> bytes:
    """The first `n` bytes of a regular file, b"" when it cannot be read (the caller has checked it)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _kind_of_mode(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode):
        return "a character device (like /dev/zero), not a regular file"
    if stat.S_ISBLK(mode):
        return "a block device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


def _check_size(path: Path, what: str, size: int, max_bytes: int, allow_empty: bool, fix: str | None) -> None:
    tail = f": {fix}" if fix else ""
    if size == 0 and not allow_empty:
        raise UserError(f"{what} {path} is empty (0 bytes){tail or ': a copy cut short? give it again'}")
    if size > max_bytes:
        raise UserError(
            f"{what} {path} is {size:,} bytes, more than the {max_bytes:,} this reader takes{tail}"
        )
