"""Published weights on disk: the file in the weights folder when it is there, else downloaded from its URL.

A download streams into a hidden temporary file beside its destination (bench/common/atomic.py `replacing`),
hashing as it goes, and is renamed to its name only when every byte the server announced has arrived
and the SHA-256 is the published one; a wrong hash, a connection closed early or a failed request is a
UserError and leaves nothing behind. A file already in the folder is checked the same way, so a damaged
or different file of the same name is never used for a published entry. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from bench.common.atomic import check_writable, replacing
from bench.common.paths import CHECKPOINT_ROOT
from bench.common.progress import progress_bar
from bench.sources.convert.published import sha256
from bench.sources.opened import Source
from bench.sources.weights import Weights
from data.errors import UserError

WEIGHTS_ROOT = CHECKPOINT_ROOT / "weights"  # default --weights-dir (git-ignored with checkpoints/)
CHUNK = 1 << 20  # 1 MiB: one progress step
TIMEOUT_S = 60.0


WEIGHTS_ENV = "CITYSCAPES_BENCH_WEIGHTS"
"""The folder of published weights a user sets once (a shared copy), used when --weights-dir is not given."""


def default_weights_dir() -> Path:
    """`$CITYSCAPES_BENCH_WEIGHTS`, else checkpoints/weights/."""
    folder = os.environ.get(WEIGHTS_ENV)
    return Path(folder).expanduser() if folder else WEIGHTS_ROOT


def checkpoint_or_weights(name: str, weights_dir: str | os.PathLike | None) -> str:
    """`--checkpoint NAME`: a published weights name becomes its checked file in `weights_dir` (default
    `default_weights_dir()`), downloaded when absent; any other name is returned as it is."""
    if is_weights_name(name):
        from bench.sources.weights import get

        return str(weights_file(get(name), weights_dir))
    if weights_dir is not None:
        raise UserError(f"--weights-dir is where a published weights name is looked for; {name} is not one")
    return name


def weights_file(
    entry: Weights,
    weights_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """The checked local file of `entry`: `weights_dir/<file name>`, downloaded there first when absent."""
    folder = Path(weights_dir).expanduser() if weights_dir is not None else default_weights_dir()
    path = folder / entry.file_name
    if os.path.lexists(path):  # a folder, a pipe or a broken link there is named, never downloaded over
        actual = sha256(path, f"weights file of {entry.name}")
        if not _matches(actual, entry.digest):
            raise UserError(
                f"{path} has SHA-256 {actual}, not the published {entry.digest} of {entry.name}: it is "
                f"damaged or another file; delete it to download it again, or pass it as --checkpoint"
            )
        return path
    if not download:
        raise UserError(f"{path} is absent: download {entry.url} into {folder}")
    return fetch(entry.url, path, entry.digest, progress=progress)


def fetch(url: str, path: str | os.PathLike, digest: str, *, progress: bool = True) -> Path:
    """Download `url` to `path`, kept only when complete and its SHA-256 starts with `digest`; a folder
    created for it is removed again when the download fails."""
    path = Path(path)
    check_writable(path, "weights file", folder=False)
    created = next((p for p in reversed(path.parents) if not p.exists()), None)
    try:
        return _fetch(url, path, digest, progress=progress)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)  # only our own, now empty, folders
        raise


def _fetch(url: str, path: Path, digest: str, *, progress: bool) -> Path:
    hint = f"download {url} by hand into {path.parent}"
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (URLs of the weights table)
    except urllib.error.HTTPError as exc:
        raise UserError(
            f"cannot download {url}: the server answered HTTP {exc.code} ({exc.reason}); the file may have "
            f"moved: {hint}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"cannot download {url} ({_reason(exc)}): check the network, or {hint}") from None
    with response, replacing(path) as tmp:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        digest_so_far, received = hashlib.sha256(), 0
        steps = -(-(expected or 0) // CHUNK)
        bar = progress_bar(steps, desc=f"download {path.name}", unit="MiB", enabled=progress)
        try:
            with open(tmp, "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest_so_far.update(chunk)
                    received += len(chunk)
                    bar.update(1)
        except (http.client.HTTPException, OSError) as exc:
            raise UserError(
                f"download of {url} broke off after {received:,d} bytes ({_reason(exc)}): nothing was kept; "
                f"try again, or {hint}"
            ) from None
        finally:
            bar.close()
        if expected is not None and received != expected:
            raise UserError(
                f"download of {url} is truncated: {received:,d} of {expected:,d} bytes arrived; nothing was "
                f"kept; try again, or {hint}"
            )
        actual = digest_so_far.hexdigest()
        if not _matches(actual, digest):
            raise UserError(
                f"download of {url} has SHA-256 {actual}, not the published {digest}: nothing was kept; the "
                f"file on the server changed or the transfer was damaged"
            )
    return path


def _matches(actual: str, digest: str) -> bool:
    """Whether a file's digest is the published one (or starts with the published prefix)."""
    return bool(digest) and actual.startswith(digest.lower())


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
    return f"{type(exc).__name__}: {reason}"


def is_weights_name(name: str) -> bool:
    """A published weights name (`bench weights`) that is not also a path."""
    from bench.sources.weights import table

    return not Path(name).exists() and any(name == entry.name for entry in table())


def open_weights(name: str, *, precision: str, fold_bn: bool, cache) -> Path:
    """Published weights by name: the checked file in `default_weights_dir()`, downloaded there first; its
    path, which `open_checkpoint` opens with the source of its kind."""
    from bench.sources.weights import get

    return weights_file(get(name))


SOURCE = Source("weights", is_weights_name, open_weights)
