"""The ground-truth cache: each frame's GT decoded once, as runs (`runs.GroundTruthRuns`), read back later.

Every evaluation (each checkpoint, each `--val-every`, every cell of a robustness sweep) scores against the
same ground-truth PNGs, and decoding them was most of an evaluation's time. The first evaluation of a frame
stores its runs in one small file per frame (about 7 bytes a run, ~100-300 KB a frame); later ones read that
instead of the two PNGs. Memory holds one frame's entry at a time, whatever the split's size.

When an entry is trusted: its file name is a hash of the two GT paths, and it records each file's size,
modification and change times (ns), inode and device. Any difference means the file changed or was
replaced: the entry is rebuilt from the PNGs. Timestamps are coarse (a file rewritten within the same clock
tick keeps its times), so an entry written less than `RACY_SECONDS` after its files' last modification is
also checked against a content hash of the PNG bytes (git's "racily clean" rule). Every entry carries a
CRC-32 over its bytes and is written atomically; a truncated, corrupt or foreign file is rebuilt, never used.

Where: `$CITYSCAPES_BENCH_GT_CACHE` (a folder, or `off`), else `$XDG_CACHE_HOME/cityscapes-bench/gt`, else
`~/.cache/cityscapes-bench/gt`. `bench cache clear` empties it; `bench evaluate --no-gt-cache` skips it.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evaluation.png import decode_png
from bench.evaluation.runs import GroundTruthRuns
from data.errors import UserError
from data.files import read_file
from data.pixels import MAX_PIXELS

ENV_VAR = "CITYSCAPES_BENCH_GT_CACHE"
OFF_VALUES = ("off", "none", "no", "0", "false")
AUTO = "auto"
"""`gt_cache=AUTO`: the cache the environment names (`default_gt_cache()`)."""

SUFFIX = ".gtruns"
RACY_SECONDS = 2.0
FORMAT_VERSION = 1
_MAGIC = b"CSBGT\x00\x00" + bytes([FORMAT_VERSION])
# magic, path hash, written at (ns), 2 x (size, mtime_ns, ctime_ns, inode, device), 2 x content hash, H, W, n
_HEADER = struct.Struct("<8s16sq" + "QqqQQ" * 2 + "16s16sIII")
_CRC = struct.Struct("<I")
_MAX_ENTRY_BYTES = _HEADER.size + 7 * MAX_PIXELS + _CRC.size  # 7 bytes per run, at most one run a pixel
_STAT_FIELDS = 5


def default_gt_cache(environ: os._Environ | dict[str, str] | None = None) -> GTCache | None:
    """The cache folder the environment names; None when `$CITYSCAPES_BENCH_GT_CACHE` is `off`."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "").strip()
    if value.lower() in OFF_VALUES:
        return None
    if value:
        return GTCache(Path(value).expanduser())
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative ones
    return GTCache(base / "cityscapes-bench" / "gt")


def resolve_gt_cache(value: GTCache | str | os.PathLike | None) -> GTCache | None:
    """`AUTO` -> the environment's cache, None -> no cache, a folder -> a cache there."""
    if value is None or isinstance(value, GTCache):
        return value
    if value == AUTO:
        return default_gt_cache()
    return GTCache(Path(value).expanduser())


@dataclass(frozen=True)
class GTCache:
    """A cache folder (plain value: worker processes get it pickled with their tasks)."""

    root: Path

    def open(self, labels: Path, instances: Path) -> CachedFrame:
        """The frame's GT runs: from its entry when that is valid, else decoded now (then `commit()` stores
        them; call it after scoring succeeded, so a GT file that fails the checks is never stored)."""
        began = time.time_ns()
        name = _path_hash(labels, instances)
        entry = self.root / f"{name.hex()}{SUFFIX}"
        signature = _signature(labels, instances)
        if signature is not None:
            runs = _read_entry(entry, name, signature, (labels, instances))
            if runs is not None:
                return CachedFrame(runs, None)
        label_bytes, inst_bytes = _read(labels, "ground truth"), _read(instances, "instance ground truth")
        runs = GroundTruthRuns.from_arrays(
            decode_png(label_bytes, labels, "ground truth"),
            decode_png(inst_bytes, instances, "instance ground truth"),
            gt_path=labels,
            inst_path=instances,
        )
        if signature is None or signature != _signature(labels, instances):
            return CachedFrame(runs, None)  # the files changed while being read: do not store
        blob = _encode(runs, name, began, signature, (_digest(label_bytes), _digest(inst_bytes)))
        return CachedFrame(runs, (entry, blob))

    def labels(self, labels: Path, instances: Path) -> np.ndarray | None:
        """The frame's label-ID image from a valid entry, or None (nothing is decoded or stored here): for
        readers that need only the labels (Boundary IoU, calibration) beside the scoring that fills it."""
        name = _path_hash(labels, instances)
        signature = _signature(labels, instances)
        if signature is None:
            return None
        runs = _read_entry(self.root / f"{name.hex()}{SUFFIX}", name, signature, (labels, instances))
        return None if runs is None else runs.to_arrays()[0]

    def entries(self) -> list[Path]:
        """The entry files in the folder (nothing else in it is ours)."""
        try:
            return sorted(p for p in self.root.iterdir() if p.name.endswith(SUFFIX) and p.is_file())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise UserError(f"cannot read the GT cache folder {self.root}: {exc.strerror}") from None

    def clear(self) -> tuple[int, int]:
        """Delete every entry (and leftover temporary files of ours); returns (files, bytes) removed."""
        files = removed = 0
        try:
            leftovers = [p for p in self.root.iterdir() if p.name.startswith(".") and SUFFIX in p.name]
        except FileNotFoundError:
            return 0, 0
        except OSError as exc:
            raise UserError(f"cannot read the GT cache folder {self.root}: {exc.strerror}") from None
        for path in [*self.entries(), *leftovers]:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise UserError(
                    f"cannot delete {path}: {exc.strerror}; check the folder's permissions"
                ) from None
            files, removed = files + 1, removed + size
        return files, removed


@dataclass
class CachedFrame:
    """One frame's GT runs, and the entry to write when they were decoded now."""

    runs: GroundTruthRuns
    pending: tuple[Path, bytes] | None

    @property
    def hit(self) -> bool:
        return self.pending is None

    def commit(self) -> None:
        """Store the entry (atomic; a cache that cannot be written only costs speed, never the result)."""
        if self.pending is None:
            return
        from bench.common.atomic import write_bytes

        path, blob = self.pending
        self.pending = None
        try:
            write_bytes(path, blob, durable=False)
        except UserError:
            pass


# --- entries ---------------------------------------------------------------------------------------------
def _path_hash(labels: Path, instances: Path) -> bytes:
    text = "\0".join(os.path.realpath(p) for p in (labels, instances))
    return hashlib.blake2b(os.fsencode(text), digest_size=16, person=b"csb-gt-path").digest()


def _signature(labels: Path, instances: Path) -> tuple[int, ...] | None:
    """(size, mtime, ctime, inode, device) of both files; None when one cannot be read (decoding says why)."""
    values: list[int] = []
    for path in (labels, instances):
        try:
            st = os.stat(path)
        except OSError:
            return None
        values += [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    return tuple(values)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _read(path: Path, role: str) -> bytes:
    return read_file(path, role)


def _encode(
    runs: GroundTruthRuns,
    name: bytes,
    written_ns: int,
    signature: tuple[int, ...],
    digests: tuple[bytes, bytes],
) -> bytes:
    n = len(runs.starts)
    header = _HEADER.pack(_MAGIC, name, written_ns, *signature, *digests, *runs.shape, n)
    body = b"".join(
        (
            header,
            runs.starts.astype("<u4").tobytes(),
            runs.instances.astype("<u2").tobytes(),
            runs.labels.astype(np.uint8).tobytes(),
        )
    )
    return body + _CRC.pack(zlib.crc32(body))


def _read_entry(
    path: Path, name: bytes, signature: tuple[int, ...], files: tuple[Path, Path]
) -> GroundTruthRuns | None:
    """The entry's runs when it is whole, ours, for these files and up to date; None otherwise."""
    try:  # a FIFO, a device or an oversized file in the cache is a miss (rebuilt), never a hang
        data = read_file(path, "ground-truth cache entry", max_bytes=_MAX_ENTRY_BYTES)
    except UserError:
        return None
    if len(data) < _HEADER.size + _CRC.size or not data.startswith(_MAGIC):
        return None
    body = memoryview(data)[: -_CRC.size]
    if _CRC.unpack_from(data, len(body))[0] != zlib.crc32(body):
        return None
    magic, stored_name, written_ns, *rest = _HEADER.unpack_from(data)
    stored_signature = tuple(rest[: 2 * _STAT_FIELDS])
    digests = rest[2 * _STAT_FIELDS : 2 * _STAT_FIELDS + 2]
    height, width, n = rest[2 * _STAT_FIELDS + 2 :]
    if stored_name != name or stored_signature != signature or len(body) != _HEADER.size + 7 * n or n < 1:
        return None
    if not 0 < height * width <= MAX_PIXELS or min(height, width) <= 0:  # the pixel budget, as for PNGs
        return None
    offset = _HEADER.size
    starts = np.frombuffer(data, "<u4", n, offset).astype(np.intp)
    instances = np.frombuffer(data, "<u2", n, offset + 4 * n).astype(np.uint16)
    labels = np.frombuffer(data, np.uint8, n, offset + 6 * n)
    if starts[0] != 0 or starts[-1] >= height * width or (n > 1 and np.any(starts[1:] <= starts[:-1])):
        return None
    newest = max(signature[1], signature[_STAT_FIELDS + 1])  # the two mtimes
    if newest > written_ns - int(RACY_SECONDS * 1e9):
        # written within a clock tick or so of the files' last change: a rewrite might not show in the times
        for file, digest in zip(files, digests, strict=True):
            try:
                if _digest(read_file(file, "ground truth")) != digest:
                    return None
            except UserError:
                return None
    return GroundTruthRuns((height, width), starts, labels, instances)
