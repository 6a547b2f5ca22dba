"""Atomic file writes and an exclusive lock, so a crash or a second process never leaves a half-written file.

A write goes to a temporary file in the target's folder (same file system), is fsynced, then renamed over
the target with `os.replace`: readers see the old bytes or the new bytes, never a mix. A folder of outputs
is filled under a hidden temporary name and renamed into place the same way (`replaced_folder`). A write
that the system refuses (no space, read-only, a file where a folder should be) is a `UserError` naming the
path; `check_writable` finds most of those before a command starts its work. Temporary and lock names stay
within the file system's name limit, however long the target's name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from data.errors import UserError

_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = 8  # characters tempfile adds between prefix and suffix
_WRITE_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EFBIG,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
)
"""OSErrors of a writer inside `replacing` that are about the target (its space or its file system)."""


def write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Replace `path` with `data` atomically; the folder is created if needed. Returns the path.

    `durable=False` skips the fsyncs (still atomic for readers, not across a power cut): for caches whose
    entries carry a checksum, where a torn entry after a crash is detected and rebuilt anyway.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path` for a writer that needs a file name (a zip archive, a library's
    `save`): renamed over `path` when the block ends without error, deleted when it raises (Ctrl-C too).

    A process killed outright leaves at most the hidden `.{name}.*.tmp` file, never a half-written `path`.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path, _TMP_SUFFIX, 2 + _PID + _TMP_RANDOM + len(_TMP_SUFFIX))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX)
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise _write_error(path, exc) from None
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def writing(
    path: str | os.PathLike, what: str, fix: str = "free space or choose another path"
) -> Iterator[None]:
    """For a write that cannot be atomic (a log appended row by row, a library's writer): an OSError of
    the file system inside the block (no space, read-only, a folder in the way) is a UserError naming
    `what` and `path` and the fix, never a traceback."""
    try:
        yield
    except OSError as exc:
        raise UserError(f"cannot write {what} {path} ({exc.strerror or exc}): {fix}") from None


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(_lock_path(path), "a+b")
    except OSError as exc:
        raise _write_error(_lock_path(path), exc) from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Like `locked`, but refuse at once (UserError naming the holder's pid) when another process holds it.

    For work that must not run twice at the same time (a training folder): waiting would only run the
    second job after the first, on top of its results. The holder writes its pid into the lock file, which
    is removed when the holder is done (a finished command leaves nothing beside its output).
    """
    path = Path(path)
    lock_path = _lock_path(path)
    while True:
        lock = open(lock_path, "a+")  # noqa: SIM115 (closed below, after the lock is released)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            lock.close()
            raise UserError(
                f"{what} is in use by {'process ' + holder if holder else 'another process'} "
                f"(lock {lock_path}): wait for it to finish or choose another folder"
            ) from None
        try:
            same = os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        lock.close()  # the holder removed that file as we opened it: lock the one at the path now
    try:
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
    finally:
        # removed while still held, so no one is left holding a file that is no longer the path's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()


def check_writable(path: str | os.PathLike, what: str, *, folder: bool | None = None) -> Path:
    """Raise UserError now, before any work, if `what` (an option, e.g. "--json file") could not be written
    at `path` at the end.

    `folder=True` (an output folder) refuses an existing file at `path`, `folder=False` (an output file) an
    existing folder. Every name on the path must fit the file system, the nearest existing ancestor must be
    a folder (not a file) in which a file can be created (created and removed here: the real test, which
    also holds for root and read-only mounts), and its file system must have space left.
    """
    path = Path(path)
    missing: list[str] = []  # names below the nearest existing ancestor, top first
    where = path
    while True:
        try:
            info = where.stat()
            break
        except FileNotFoundError:
            if where.is_symlink():
                raise UserError(
                    f"{what} {path} cannot be written: {where} is a broken symbolic link"
                ) from None
        except NotADirectoryError:
            pass  # a file further up: found below
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise UserError(f"{what} {path} cannot be written: {exc.strerror} ({where})") from None
        if where == where.parent:
            raise UserError(f"{what} {path} cannot be written: none of its folders exists")
        missing.insert(0, where.name)
        where = where.parent
    if not missing:  # the path itself exists
        is_dir = stat.S_ISDIR(info.st_mode)
        if is_dir and folder is False:
            raise UserError(f"{what} {path} is a folder: give a file name, e.g. {path / 'out'}")
        if not is_dir and folder is True:
            raise UserError(f"{what} {path} is a file, not a folder: choose a folder path")
        if not is_dir:  # a file to replace: what counts is its folder
            where, info = path.parent, path.parent.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {path} cannot be written: {where} is a file, not a folder")
    limit = _name_max(where)
    for name in missing:
        if len(os.fsencode(name)) > limit:
            raise UserError(
                f"{what} {path} cannot be written: the name {name[:32]}... is {len(os.fsencode(name))} "
                f"bytes long, the file system allows {limit}"
            )
    try:
        with tempfile.TemporaryFile(dir=where):
            pass
        space = os.statvfs(where)
    except OSError as exc:
        raise UserError(
            f"{what} {path}: cannot write in {where} ({exc.strerror}); choose a writable location"
        ) from None
    if space.f_bavail == 0 and (os.geteuid() != 0 or space.f_bfree == 0):  # root may use reserved blocks
        raise UserError(f"{what} {path}: no space left on the file system of {where}")
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
    _remove_stale(path, ".partial", 18 + _PID)
    _restore_or_remove_old(path)
    tmp = Path(
        tempfile.mkdtemp(
            dir=path.parent, prefix=f".{_short_name(path, 18 + _PID)}.{os.getpid()}.", suffix=".partial"
        )
    )
    old = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{_short_name(path, 16)}.{os.getpid()}.old")
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
    return path.with_name(f".{_short_name(path, len('..lock'))}.lock")


def _write_error(path: Path, exc: OSError) -> UserError:
    """The OSError of a write as a UserError; a folder that failed is named, our temporary file is not."""
    culprit = Path(exc.filename) if exc.filename else path
    where = f" ({culprit})" if culprit.parent != path.parent and culprit != path else ""
    return UserError(f"cannot write {path}: {exc.strerror or exc}{where}: choose another path or free space")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _short_name(path: Path, extra: int) -> str:
    """`path.name`, cut and given a hash when `extra` more bytes would pass the file system's name limit."""
    name = path.name
    limit = _name_max(path.parent)
    if len(os.fsencode(name)) + extra <= limit:
        return name
    digest = "-" + hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    while name and len(os.fsencode(name)) + len(digest) + extra > limit:
        name = name[:-1]
    return name + digest


_PID = 8  # room for ".{pid}" in a temporary name (Linux pids are at most 7 digits)


def _tmp_prefix(path: Path) -> str:
    """`.{name}.{pid}.` for the temporary file, short enough that prefix + random + suffix fit the name
    limit; the pid lets a later writer of the same path remove what a killed one left (`_remove_stale`)."""
    return f".{_short_name(path, 2 + _PID + _TMP_RANDOM + len(_TMP_SUFFIX))}.{os.getpid()}."


def _remove_stale(path: Path, suffix: str, extra: int) -> None:
    """Remove the temporaries (`.{name}.{pid}.*{suffix}`) that writers of `path` killed outright (kill -9,
    a power cut) left beside it: those whose process is gone. Live writers' are left alone."""
    prefix = f".{_short_name(path, extra)}."
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        name = sibling.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid = name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                sibling.unlink()


def _restore_or_remove_old(path: Path) -> None:
    """A `.{name}.{pid}.old` of a dead process: its swap was cut between the two renames. When `path` is
    missing the old folder is the last complete one and is put back; otherwise it is removed."""
    prefix = f".{_short_name(path, 16)}."
    with contextlib.suppress(OSError):
        for sibling in list(path.parent.iterdir()):
            pid = sibling.name[len(prefix) : -len(".old")]
            if not (sibling.name.startswith(prefix) and sibling.name.endswith(".old") and pid.isdigit()):
                continue
            if int(pid) == os.getpid() or _alive(int(pid)):
                continue
            if not (path.exists() or path.is_symlink()):
                os.replace(sibling, path)
            elif sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True


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
