# ruff: noqa: E501  (the case tables read best one case per line)
"""Faults of `bench convert` as an attacker and an unlucky user meet them: truncated, corrupted, hostile,
wrong-architecture and memory-bomb .pth files, paths that are no file, a corrupted conversion cache.

Each case runs `bench.cli.main` in-process and asserts exit 2, a message naming the file, no traceback and
nothing written (no `--out`, no temporary file). The memory bombs run under an address-space limit, so a
regression fails with a MemoryError instead of taking the machine down.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.sources.convert import torch_reader
from tests.torch_files import Tensor, write_pth

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg"
ZIP, LEGACY = FIXTURES / "pspnet_r18-d8-w8_zip.pth", FIXTURES / "pspnet_r18-d8-w8_legacy.pth"
PROJECT = Path(__file__).resolve().parents[1]
HUGE = (100_000, 100_000)  # 10**10 elements: 37 GiB as float32


def _tensor(n: int = 6) -> Tensor:
    return Tensor("0", np.arange(n, dtype=np.float32))


def _cut(source: Path, keep: float) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        data = source.read_bytes()
        return _put(tmp / "cut.pth", data[: int(len(data) * keep)] if keep < 1 else data[:-1])

    return make


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _flip(source: Path, entry_suffix: str) -> Callable[[Path], Path]:
    """A copy with bytes inside one stored entry inverted: the zip opens, its CRC check fails on read."""

    def make(tmp: Path) -> Path:
        data = bytearray(source.read_bytes())
        with zipfile.ZipFile(source) as archive:
            info = next(i for i in archive.infolist() if i.filename.endswith(entry_suffix))
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
        data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
        return _put(tmp / "flipped.pth", bytes(data))

    return make


def _rezip(source: Path, edit: Callable[[str, bytes], tuple[str, bytes] | None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        out = tmp / "edited.pth"
        with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w") as zout:
            for info in zin.infolist():
                changed = edit(info.filename, zin.read(info))
                if changed is not None:
                    zout.writestr(changed[0], changed[1])
        return out

    return make


def _drop(suffix: str):
    return _rezip(ZIP, lambda name, data: None if name.endswith(suffix) else (name, data))


def _replace(suffix: str, new: bytes):
    return _rezip(ZIP, lambda name, data: (name, new if name.endswith(suffix) else data))


def _pth(obj, fmt: str = "zip", **kw) -> Callable[[Path], Path]:
    return lambda tmp: write_pth(tmp / f"made_{fmt}.pth", obj, fmt=fmt, **kw)


def _zip_bomb(tmp: Path) -> Path:
    """A storage entry of 256 MiB of zeros deflated to a quarter MiB, named by a tensor of that size."""
    path = write_pth(
        tmp / "bomb.pth", {"w": Tensor("0", np.zeros(1, np.float32), size=(64 << 20,), numel=64 << 20)}
    )
    with zipfile.ZipFile(path) as zin:
        entries = {i.filename: zin.read(i) for i in zin.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries.items():
            if name.endswith("data/0"):
                with zout.open(name, "w", force_zip64=True) as f:
                    block = bytes(1 << 20)
                    for _ in range(256):
                        f.write(block)
            else:
                zout.writestr(name, data)
    return path


def _pickle_bomb(tmp: Path) -> Path:
    """data.pkl itself a deflated 300 MiB of zeros."""
    path = tmp / "pkl_bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        with zout.open("archive/data.pkl", "w", force_zip64=True) as f:
            for _ in range(300):
                f.write(bytes(1 << 20))
    return path


def _legacy_huge_count(tmp: Path) -> Path:
    """A legacy file whose storage header declares 2**60 elements (and whose pickle agrees)."""
    return write_pth(
        tmp / "count.pth", {"w": Tensor("0", np.zeros(1, np.float32), size=(1,), numel=2**60)}, fmt="legacy"
    )


def _legacy_hostile(tmp: Path) -> Path:
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    return _put(
        tmp / "hostile.pth",
        b"".join(
            pickle.dumps(x, protocol=2) for x in (torch_reader.LEGACY_MAGIC, torch_reader.LEGACY_PROTOCOL, {})
        )
        + pickle.dumps(Evil(), protocol=2),
    )


def _symlink(target: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        link = tmp / "link.pth"
        link.symlink_to(target(tmp))
        return link

    return make


def _loop(tmp: Path) -> Path:
    (tmp / "a.pth").symlink_to(tmp / "b.pth")
    (tmp / "b.pth").symlink_to(tmp / "a.pth")
    return tmp / "a.pth"


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo.pth")
    return tmp / "fifo.pth"


def _folder(tmp: Path) -> Path:
    (tmp / "dir.pth").mkdir()
    return tmp / "dir.pth"


def _mmseg_state(edit: Callable[[dict], dict]) -> Callable[[Path], Path]:
    """The fixture's state dict, edited, written again in the zip format."""

    def make(tmp: Path) -> Path:
        state, _ = torch_reader.read_state_dict(ZIP)
        state = edit(dict(state))
        obj = {
            k: Tensor(str(i), np.ascontiguousarray(v, np.float32) if v.dtype != np.int64 else v)
            for i, (k, v) in enumerate(state.items())
        }
        return write_pth(tmp / "mmseg_edited.pth", {"state_dict": obj})

    return make


def _first(state: dict, suffix: str) -> str:
    return next(k for k in state if k.endswith(suffix))


def _reshape_first(state: dict) -> dict:
    key = _first(state, "conv1.weight")
    state[key] = np.zeros((3, 3, 3, 3), np.float32)
    return state


def _without(suffix: str):
    def edit(state: dict) -> dict:
        del state[_first(state, suffix)]
        return state

    return edit


def _with_extra(state: dict) -> dict:
    state["backbone.layer9.conv.weight"] = np.zeros((1,), np.float32)
    return state


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]  # builds the source file in the case folder; returns its path
    needles: tuple[str, ...]  # each in stderr (after "{src}" is replaced by the path)
    extra: tuple[str, ...] = ()
    bomb: bool = False  # run under an address-space limit


CASES = [
    # truncated (an interrupted download)
    *[
        Case(
            f"convert-truncated-zip-{int(k * 100)}",
            _cut(ZIP, k),
            ("{src} is a truncated or damaged zip archive",),
        )
        for k in (0.1, 0.5, 0.9, 1.0)
    ],
    *[
        Case(f"convert-truncated-legacy-{int(k * 100)}", _cut(LEGACY, k), ("{src}", "truncated"))
        for k in (0.5, 0.9, 1.0)
    ],
    Case(
        "convert-truncated-legacy-in-pickle",
        _cut(LEGACY, 0.0005),
        ("{src}", "not a readable PyTorch checkpoint"),
    ),
    # corrupted
    Case("convert-zip-crc-storage", _flip(ZIP, "data/0"), ("{src}", "data/0 cannot be read", "damaged")),
    Case("convert-zip-crc-pickle", _flip(ZIP, "data.pkl"), ("{src}", "data.pkl cannot be read", "damaged")),
    Case("convert-zip-no-pickle", _drop("data.pkl"), ("{src} is a zip file but not a PyTorch checkpoint",)),
    Case(
        "convert-zip-two-pickles",
        _rezip(
            ZIP,
            lambda n, d: (
                (n.replace("pspnet_r18-d8-w8_zip/data.pkl", "other/data.pkl"), d)
                if n.endswith("data.pkl")
                else (n, d)
            ),
        ),
        ("{src}", "storage entry"),
    ),
    Case("convert-zip-storage-missing", _drop("data/5"), ("{src} lacks the storage entry", "truncated")),
    Case("convert-zip-storage-short", _replace("data/0", b"\0" * 10), ("{src}", "not a whole number")),
    Case(
        "convert-zip-storage-too-short",
        _replace("data/0", b"\0" * 8),
        ("{src}", "declares 216 elements over a storage of 2"),
    ),
    Case(
        "convert-zip-byteorder-bogus",
        _replace("byteorder", b"middle"),
        ("{src}: unknown byte order 'middle'",),
    ),
    Case(
        "convert-zip-pickle-garbage",
        _replace("data.pkl", b"\x80\x02garbage"),
        ("{src} is not a readable PyTorch checkpoint",),
    ),
    Case(
        "convert-zip-pickle-empty", _replace("data.pkl", b""), ("{src} is not a readable PyTorch checkpoint",)
    ),
    # not a pickle at all
    Case("convert-empty-file", lambda t: _put(t / "empty.pth", b""), ("{src} is not a PyTorch checkpoint",)),
    Case(
        "convert-text-file",
        lambda t: _put(t / "notes.pth", b"hello\n"),
        ("{src} is not a PyTorch checkpoint",),
    ),
    Case(
        "convert-png-file",
        lambda t: _put(t / "frame.pth", (FIXTURES / "frame_leftImg8bit.png").read_bytes()),
        ("{src} is not a PyTorch checkpoint",),
    ),
    Case(
        "convert-html-error-page",
        lambda t: _put(t / "page.pth", b"<html><body>403 Forbidden</body></html>"),
        ("{src} is not a PyTorch checkpoint",),
    ),
    Case(
        "convert-json-file",
        lambda t: _put(t / "meta.pth", b'{"state_dict": {}}'),
        ("{src} is not a PyTorch checkpoint",),
    ),
    Case(
        "convert-plain-zip",
        lambda t: (zipfile.ZipFile(t / "plain.pth", "w").writestr("readme.txt", "x"), t / "plain.pth")[1],
        ("{src} is a zip file but not a PyTorch checkpoint",),
    ),
    Case(
        "convert-pickle-protocol-byte-only",
        lambda t: _put(t / "proto.pth", b"\x80"),
        ("{src} is not a PyTorch checkpoint",),
    ),
    Case(
        "convert-plain-pickle-of-a-dict",
        lambda t: _put(t / "dict.pth", pickle.dumps({"a": 1}, protocol=2)),
        ("{src}", "no magic number"),
    ),
    Case(
        "convert-legacy-wrong-protocol",
        lambda t: _put(
            t / "proto.pth",
            pickle.dumps(torch_reader.LEGACY_MAGIC, protocol=2) + pickle.dumps(999, protocol=2),
        ),
        ("{src}: legacy PyTorch protocol 999",),
    ),
    Case(
        "convert-legacy-big-endian",
        lambda t: _put(
            t / "be.pth",
            b"".join(
                pickle.dumps(x, protocol=2)
                for x in (torch_reader.LEGACY_MAGIC, torch_reader.LEGACY_PROTOCOL, {"little_endian": False})
            ),
        ),
        ("{src} was written on a big-endian machine",),
    ),
    Case(
        "convert-legacy-hostile-global",
        _legacy_hostile,
        ("{src} names the global", "system", "refused without running it"),
    ),
    # wrong content / architecture
    Case("convert-state-not-a-dict", _pth([_tensor()]), ("{src} holds a list, not a state dict",)),
    Case(
        "convert-state-value-not-tensor",
        _pth({"state_dict": {"w": _tensor(), "lr": 0.1}}),
        ("{src}: state dict entry 'lr' is a float, not a tensor",),
    ),
    Case(
        "convert-state-unknown-layout",
        _pth({"state_dict": {"features.0.weight": _tensor()}}),
        ("{src}: no known layout for keys like features.0.weight",),
    ),
    Case("convert-state-empty", _pth({"state_dict": {}}), ("{src}: no known layout",)),
    Case("convert-wrong-shape", _mmseg_state(_reshape_first), ("{src}", "has shape (3, 3, 3, 3)")),
    Case(
        "convert-missing-tensor",
        _mmseg_state(_without("bn1.running_var")),
        ("{src} lacks the tensor", "running_var"),
    ),
    Case("convert-extra-tensor", _mmseg_state(_with_extra), ("{src} has 1 tensor(s)", "layer9")),
    Case(
        "convert-source-mismatch",
        _pth({"state_dict": {"features.0.weight": _tensor()}}),
        ("{src} is not a mmseg state dict",),
        extra=("--source", "mmseg"),
    ),
    # memory bombs: a few bytes that declare gigabytes
    Case(
        "convert-bomb-stride-0-zip",
        _pth({"w": Tensor("0", np.zeros(1, np.float32), size=HUGE, stride=(0, 0))}),
        ("{src}", "refused before allocating"),
        bomb=True,
    ),
    Case(
        "convert-bomb-stride-0-legacy",
        _pth({"w": Tensor("0", np.zeros(1, np.float32), size=HUGE, stride=(0, 0))}, "legacy"),
        ("{src}", "refused before allocating"),
        bomb=True,
    ),
    Case("convert-bomb-zip-storage", _zip_bomb, ("{src}", "zip bomb", "refused before unpacking"), bomb=True),
    Case(
        "convert-bomb-zip-pickle",
        _pickle_bomb,
        ("{src}", "data.pkl declares", "refused before unpacking"),
        bomb=True,
    ),
    Case(
        "convert-bomb-legacy-count",
        _legacy_huge_count,
        ("{src} ends inside storage 0", "truncated"),
        bomb=True,
    ),
    Case(
        "convert-bomb-negative-size",
        _pth({"w": Tensor("0", np.zeros(4, np.float32), size=(-1, 4), stride=(4, 1))}),
        ("{src}", "malformed"),
        bomb=True,
    ),
    Case(
        "convert-bomb-offset-past-storage",
        _pth({"w": Tensor("0", np.zeros(4, np.float32), size=(4,), offset=10**12)}),
        ("{src}", "reaches element"),
        bomb=True,
    ),
    # paths that are no file
    Case("convert-missing-file", lambda t: t / "nope.pth", ("checkpoint {src} does not exist",)),
    Case("convert-a-folder", _folder, ("checkpoint {src} is a folder",)),
    Case("convert-a-fifo", _fifo, ("checkpoint {src} is a FIFO (named pipe), not a regular file",)),
    Case(
        "convert-broken-symlink",
        _symlink(lambda t: t / "gone.pth"),
        ("checkpoint {src} is a broken symbolic link",),
    ),
    Case(
        "convert-symlink-loop",
        _loop,
        ("checkpoint {src} is a symbolic link loop",),
    ),
]


@contextlib.contextmanager
def address_space(limit: int):
    """Cap this process's address space (restored after): an allocation past it fails at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module", autouse=True)
def _tensorflow_once():
    """`bench convert` imports TensorFlow first: do it before a case caps the address space."""
    from bench.common.tensorflow_import import import_tensorflow

    import_tensorflow()


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_pth_is_refused_with_a_message_naming_it(case, tmp_path, capsys):
    src = case.make(tmp_path)
    before = listing(tmp_path)
    out = tmp_path / "out" / "model.keras"
    argv = ["convert", str(src), "--out", str(out), *case.extra]
    if case.bomb:
        used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        with address_space(used + (2 << 30)):  # 2 GiB more than now: far below any bomb here
            code = run_cli(argv)
    else:
        code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: "), err
    for needle in case.needles:
        assert needle.replace("{src}", str(src)) in err, (needle, err)
    assert listing(tmp_path) == before  # no --out, no temporary file


def test_the_convert_matrix_holds_its_cases():
    assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------ the conversion cache and two converts at once


def test_corrupted_cache_entry_is_converted_again(tmp_path, capsys, monkeypatch):
    """A cache entry cut short (a convert killed before `replacing` existed, a full disk, bit rot) is not
    trusted: the next run notices and converts again instead of failing on it forever."""
    from bench.sources.convert.converter import converted

    src = tmp_path / ZIP.name
    shutil.copy(ZIP, src)
    cache = tmp_path / "cache"
    first = converted(src, root=cache)
    good = first.read_bytes()
    first.write_bytes(good[: len(good) // 2])
    again = converted(src, root=cache)
    out = capsys.readouterr().out
    assert again == first and "damaged" in out and "converting" in out
    from bench.sources import keras_checkpoint as ckpt

    assert ckpt.read_metadata(again)["source"]["file"] == src.name
    assert sorted(p.name for p in cache.iterdir()) == [first.name]


@pytest.mark.slow
def test_two_converts_of_one_file_at_once_both_succeed_with_one_whole_result(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "model.keras"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench", "convert", str(ZIP), "--out", str(out)],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [job.communicate(timeout=300) for job in jobs]
    for job, (stdout, stderr) in zip(jobs, results, strict=True):
        assert job.returncode == 0 and "Traceback" not in stderr, stderr
        assert f"wrote {out}" in stdout
    from bench.sources import keras_checkpoint as ckpt

    assert ckpt.read_metadata(out)["source"]["tensors"] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temporary file left
