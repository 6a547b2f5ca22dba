"""Atomic file writes and an exclusive lock, so a crash or a second process never leaves a half-written file.

A write goes to a temporary file in the target's folder (same file system), is fsynced, then renamed over
the target with `os.replace`: readers see the old bytes or the new bytes, never a mix. A folder of outputs
is filled under a hidden temporary name and renamed into place the same way (`replaced_folder`).
`check_writable` fails before the work when an output could not be written at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from data.errors import UserError


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically; the folder is created if needed. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """`write_bytes` for UTF-8 text with the newlines as given (no platform translation)."""
    return write_bytes(path, text.encode("utf-8"))


def write_if_changed(path: str | os.PathLike, data: bytes) -> bool:
    """Write atomically only when the bytes differ, so regenerating the same output touches nothing."""
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive `flock` on the hidden lock file `.{name}.lock` next to `path`.

    The lock lives in its own file because the data file itself is replaced (a new inode) on every write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(path), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Like `locked`, but refuse at once (UserError naming the holder's pid) when another process holds it.

    For work that must not run twice at the same time (a training folder): waiting would only run the
    second job after the first, on top of its results. The holder writes its pid into the lock file.
    """
    path = Path(path)
    lock_path = _lock_path(path)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise UserError(
                f"{what} is in use by {'process ' + holder if holder else 'another process'} "
                f"(lock {lock_path}): wait for it to finish or choose another folder"
            ) from None
        try:
            lock.seek(0)
            lock.truncate()
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def check_writable(path: str | os.PathLike, what: str, *, folder: bool | None = None) -> Path:
    """Raise UserError now, before any work, if `path` could not be created or written at the end.

    Walks up to the nearest existing folder and creates (and removes) a file there: the real test, which
    also holds for root, read-only mounts and full inode tables. `folder=True` (an output folder) refuses an
    existing file at `path`, `folder=False` (an output file) an existing folder. `what` names the option.
    """
    path = Path(path)
    if folder is True and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder: choose a folder path")
    if folder is False and path.is_dir():
        raise UserError(f"{what} {path} is a folder: give a file path, e.g. {path / 'out'}")
    existing = path if path.exists() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path}: {existing} is a file, not a folder; choose a path in a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(
            f"{what} {path}: cannot write in {existing} ({exc.strerror}); choose a writable location"
        ) from None
    return path


@contextlib.contextmanager
def replaced_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden sibling folder to fill; when the block succeeds it replaces `path` whole.

    A failure or Ctrl-C deletes the new folder and leaves `path` as it was, so `path` always holds one
    complete set of outputs, never a mix of an old and a new run. The old folder and everything in it are
    deleted: callers decide first that it is theirs to replace.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    old = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)  # the swap failed half-way: put the old folder back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _mode_for(path: Path) -> int:
    """Keep an existing file's mode; new files get 0o666 minus the umask (mkstemp alone gives 0o600)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: some file systems refuse to fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
