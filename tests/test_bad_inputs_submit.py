# ruff: noqa: E501  (the case tables read best one case per line)
"""`bench submit --check` on what a hostile or unlucky zip holds: bombs, path traversal, damage, non-zips,
wrong sizes; and `bench submit --out` stopped mid-write.

Each case runs `bench.cli.main` in-process (no TensorFlow: the check needs none) and asserts the exit
code, the message naming the entry and the fix, no traceback, and the folder unchanged.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.submission.writer import entry_name
from data.labels import TRAIN_TO_LABEL

H, W = 32, 64
KEYS = ("berlin_000000_000019", "berlin_000001_000019", "bonn_000000_000019")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def labels(seed: int = 0, shape=(H, W)) -> np.ndarray:
    return TRAIN_TO_LABEL[np.random.default_rng(seed).integers(0, 19, shape)].astype(np.uint8)


def good() -> dict[str, bytes]:
    return {entry_name(key): png(labels(i)) for i, key in enumerate(KEYS)}


def write_zip(path: Path, entries: dict[str, bytes], method=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def with_entries(edit: Callable[[dict[str, bytes]], dict[str, bytes]], method=zipfile.ZIP_STORED):
    return lambda folder: write_zip(folder / "sub.zip", edit(good()), method)


def rename_first(new: str):
    def edit(entries: dict[str, bytes]) -> dict[str, bytes]:
        first = entry_name(KEYS[0])
        entries[new] = entries.pop(first)
        return entries

    return with_entries(edit)


def replace_first(data: bytes | Callable[[], bytes]):
    def edit(entries: dict[str, bytes]) -> dict[str, bytes]:
        entries[entry_name(KEYS[0])] = data() if callable(data) else data
        return entries

    return with_entries(edit)


def add(name: str, data: bytes = b"x"):
    return with_entries(lambda entries: {**entries, name: data})


def _declared_size(folder: Path, size: int) -> Path:
    """A zip whose first entry's headers declare `size` bytes uncompressed (a bomb's first trait)."""
    path = write_zip(folder / "sub.zip", good(), zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry_name(KEYS[0]))
    struct.pack_into("<I", data, info.header_offset + 22, size)  # local header: uncompressed size
    central = data.rfind(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6], 0)
    central = bytes(data).find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)  # first central record: uncompressed size
    path.write_bytes(bytes(data))
    return path


def _deflate_bomb(folder: Path) -> Path:
    """A real bomb: 200 MiB of zeros, deflated to about 200 KiB, under a frame's name."""
    path = folder / "sub.zip"
    entries = good()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            if name == entry_name(KEYS[0]):
                with archive.open(name, "w", force_zip64=True) as f:
                    for _ in range(200):
                        f.write(bytes(1 << 20))
            else:
                archive.writestr(name, data)
    return path


def _png_ihdr_huge(folder: Path) -> Path:
    """A PNG header declaring 100000x100000 pixels, 60 bytes in all."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return replace_first(b"\x89PNG\r\n\x1a\n" + chunk)(folder)


def _flip_entry(folder: Path) -> Path:
    path = write_zip(folder / "sub.zip", good())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry_name(KEYS[0]))
    start = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))
    return path


def _cut_zip(keep: float):
    def make(folder: Path) -> Path:
        path = write_zip(folder / "sub.zip", good())
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    return make


def _raw(data: bytes, name: str = "sub.zip"):
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return make


def _deflated_damage(folder: Path) -> Path:
    """Deflate data overwritten in the middle: the inflater fails (zlib.error) before any CRC check."""
    path = write_zip(
        folder / "sub.zip", {**good(), entry_name(KEYS[0]): bytes(range(256)) * 200}, zipfile.ZIP_DEFLATED
    )
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry_name(KEYS[0]))
    start = info.header_offset + 30 + len(info.filename) + 2
    data[start : start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    return path


def _unknown_method(folder: Path) -> Path:
    path = write_zip(folder / "sub.zip", good())
    data = bytearray(path.read_bytes())
    central = bytes(data).find(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 10, 99)  # compression method 99 (AES), in the central record
    struct.pack_into("<H", data, 8, 99)  # and the local header
    path.write_bytes(bytes(data))
    return path


def _encrypted_flag(folder: Path) -> Path:
    path = write_zip(folder / "sub.zip", good())
    data = bytearray(path.read_bytes())
    central = bytes(data).find(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, central + 8)[0] | 0x1
    struct.pack_into("<H", data, central + 8, flags)
    struct.pack_into("<H", data, 6, flags)
    path.write_bytes(bytes(data))
    return path


def _zip_folder(folder: Path) -> Path:
    (folder / "sub.zip").mkdir()
    return folder / "sub.zip"


def _zip_fifo(folder: Path) -> Path:
    os.mkfifo(folder / "sub.zip")
    return folder / "sub.zip"


def _zip_broken_link(folder: Path) -> Path:
    (folder / "sub.zip").symlink_to(folder / "gone.zip")
    return folder / "sub.zip"


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]
    needles: tuple[str, ...]
    code: int = 2


ZIP_NAME = entry_name(KEYS[0])
CASES = [
    # bombs
    Case(
        "submit-bomb-declared-4gib",
        lambda f: _declared_size(f, 0xFFFF_FFF0),
        (ZIP_NAME, "declares 4294967280 bytes", "zip bomb"),
    ),
    Case(
        "submit-bomb-declared-100mib",
        lambda f: _declared_size(f, 100 << 20),
        (ZIP_NAME, "declares 104857600 bytes", "zip bomb"),
    ),
    Case("submit-bomb-deflate-200mib", _deflate_bomb, (ZIP_NAME, "declares 209715200 bytes", "zip bomb")),
    Case(
        "submit-bomb-png-header-huge",
        _png_ihdr_huge,
        (ZIP_NAME, "is 100000x100000 (HxW) but its image is 32x64"),
    ),
    Case(
        "submit-many-extra-entries",
        with_entries(lambda e: {**e, **{f"junk{i}.txt": b"" for i in range(500)}}),
        ("500 problem(s)", "junk0.txt", "and 480 more"),
    ),
    # path traversal and odd names
    Case(
        "submit-traversal-dotdot",
        rename_first(f"../{ZIP_NAME}"),
        (f"../{ZIP_NAME}", "unsafe name", "plain file name"),
    ),
    Case(
        "submit-traversal-deep", rename_first(f"a/../../{ZIP_NAME}"), (f"a/../../{ZIP_NAME}", "unsafe name")
    ),
    Case("submit-traversal-absolute", rename_first(f"/tmp/{ZIP_NAME}"), (f"/tmp/{ZIP_NAME}", "unsafe name")),
    Case("submit-traversal-backslash", rename_first(f"..\\{ZIP_NAME}"), (f"..\\{ZIP_NAME}", "unsafe name")),
    Case("submit-traversal-drive-letter", rename_first(f"C:/{ZIP_NAME}"), (f"C:/{ZIP_NAME}", "unsafe name")),
    Case("submit-extra-dotdot-file", add("../evil.sh"), ("../evil.sh", "unsafe name")),
    Case("submit-symlink-entry", lambda f: _symlink_entry(f), (ZIP_NAME, "a symbolic link")),
    Case("submit-duplicate-entry", lambda f: _duplicate(f), (ZIP_NAME, "2 files match frame")),
    Case(
        "submit-frame-in-a-folder-is-fine",
        rename_first(f"preds/{ZIP_NAME}"),
        ("3 frames of split 'test'", "format valid, but not ready to upload", "1525 frames"),
        code=0,
    ),
    Case(
        "submit-upper-case-suffix",
        rename_first(ZIP_NAME.replace(".png", ".PNG")),
        ("is not a PNG", "1 of the 3 frames"),
    ),
    # damage
    Case("submit-crc-error", _flip_entry, (ZIP_NAME, "cannot be read", "Bad CRC", "write the zip again")),
    Case("submit-deflate-damaged", _deflated_damage, (ZIP_NAME, "cannot be read", "write the zip again")),
    Case("submit-unknown-compression", _unknown_method, (ZIP_NAME, "cannot be read", "write the zip again")),
    Case("submit-encrypted-entry", _encrypted_flag, (ZIP_NAME, "encrypted", "without a password")),
    Case("submit-truncated-90", _cut_zip(0.9), ("sub.zip is not a readable zip archive", "write it again")),
    Case("submit-truncated-10", _cut_zip(0.1), ("sub.zip is not a readable zip archive",)),
    # not a zip
    Case("submit-empty-file", _raw(b""), ("sub.zip is not a readable zip archive",)),
    Case("submit-text-file", _raw(b"predictions\n"), ("sub.zip is not a readable zip archive",)),
    Case("submit-a-png", _raw(png(labels(0))), ("sub.zip is not a readable zip archive",)),
    Case("submit-tar-archive", _raw(b"ustar" + bytes(600)), ("is not a readable zip archive",)),
    Case("submit-zip-is-a-folder", _zip_folder, ("submission", "sub.zip is a folder")),
    Case("submit-zip-is-a-fifo", _zip_fifo, ("sub.zip is a FIFO (named pipe), not a regular file",)),
    Case("submit-zip-broken-link", _zip_broken_link, ("sub.zip is a broken symbolic link",)),
    Case("submit-zip-missing", lambda f: f / "sub.zip", ("submission", "sub.zip does not exist")),
    Case(
        "submit-empty-zip",
        lambda f: write_zip(f / "sub.zip", {}),
        ("3 of the 3 frames of split 'test' have no prediction",),
    ),
    # wrong sizes and contents
    Case(
        "submit-half-size",
        replace_first(lambda: png(labels(0, (H // 2, W // 2)))),
        (ZIP_NAME, "is 16x32 (HxW) but its image is 32x64"),
    ),
    Case(
        "submit-transposed",
        replace_first(lambda: png(labels(0, (W, H)))),
        (ZIP_NAME, "is 64x32 (HxW) but its image is 32x64"),
    ),
    Case("submit-one-pixel", replace_first(lambda: png(labels(0, (1, 1)))), (ZIP_NAME, "is 1x1")),
    Case("submit-zero-byte-png", replace_first(b""), (ZIP_NAME, "is not a PNG file")),
    Case(
        "submit-truncated-png", replace_first(lambda: png(labels(0))[:60]), (ZIP_NAME, "truncated or corrupt")
    ),
    Case(
        "submit-rgb-png",
        replace_first(lambda: png(np.zeros((H, W, 3), np.uint8))),
        (ZIP_NAME, "an RGB image"),
    ),
    Case(
        "submit-16-bit-png",
        replace_first(lambda: png(labels(0).astype(np.uint16) * 300)),
        (ZIP_NAME, "16-bit"),
    ),
    Case(
        "submit-value-200",
        replace_first(lambda: png(np.full((H, W), 200, np.uint8))),
        (ZIP_NAME, "has value 200, which is no label ID"),
    ),
    Case(
        "submit-train-ids",
        replace_first(lambda: png(np.random.default_rng(0).integers(0, 19, (H, W)).astype(np.uint8))),
        (ZIP_NAME, "looks like train IDs"),
    ),
    Case(
        "submit-a-valid-zip",
        lambda f: write_zip(f / "sub.zip", good()),
        ("3 frames of split 'test'", "format valid, but not ready to upload", "1525 frames"),
        code=0,
    ),
    Case(
        "submit-a-valid-deflated-zip",
        lambda f: write_zip(f / "sub.zip", good(), zipfile.ZIP_DEFLATED),
        ("not ready to upload", "expects 1024x2048 (HxW)"),
        code=0,
    ),
]


def _symlink_entry(folder: Path) -> Path:
    path = write_zip(folder / "sub.zip", {k: v for k, v in good().items() if k != ZIP_NAME})
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo(ZIP_NAME)
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    return path


def _duplicate(folder: Path) -> Path:
    path = write_zip(folder / "sub.zip", good())
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr(ZIP_NAME, png(labels(1)))
    return path


@pytest.fixture()
def dataset(tmp_path) -> Path:
    root = tmp_path / "ds"
    for key in KEYS:
        folder = root / "leftImg8bit" / "test" / key.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(folder / f"{key}_leftImg8bit.png")
    return root


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.lstat().st_size for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_submission_check(case, dataset, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    path = case.make(work)
    before = snapshot(tmp_path)
    try:
        code = main(["submit", "--check", str(path), "--dataset", str(dataset)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.code, out + err
    assert "Traceback" not in out + err
    for needle in case.needles:
        assert needle in out + err, (needle, out + err)
    assert snapshot(tmp_path) == before


def test_the_submit_matrix_holds_its_cases():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------ images of the split itself


@pytest.mark.parametrize(
    ("spoil", "needle"),
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: (p.unlink(), p.mkdir()), "is a folder"),
        (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file"),
    ],
    ids=["image-zero-bytes", "image-a-folder", "image-a-fifo"],
)
def test_an_unreadable_image_of_the_split_is_named(spoil, needle, dataset, tmp_path, capsys):
    image = next((dataset / "leftImg8bit" / "test").rglob("*.png"))
    spoil(image)
    path = write_zip(tmp_path / "sub.zip", good())
    code = main(["submit", "--check", str(path), "--dataset", str(dataset)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(image) in err and needle in err, err
