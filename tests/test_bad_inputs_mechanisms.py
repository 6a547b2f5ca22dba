# ruff: noqa: E501  (the case tables read best one case per line)
"""The three mechanisms every reader shares, met as a hostile file or a senseless number would meet them:
the path check (`data/files.py`: kind, size, readable), the pixel budget (`data/pixels.py`: declared PNG
dimensions before a byte is decoded) and the number range (`bench/common/ranges.py`). Each case is one kind
of path or value; the command-level cases of these classes are in test_bad_inputs_readers.py."""

from __future__ import annotations

import math
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from bench.common.ranges import Range
from bench.evaluation import calibration
from bench.evaluation.boundary import RATIO, band_width
from bench.evaluation.png import decode_png, encode_png, read_png
from data.errors import UserError
from data.files import check_file, not_a_file, read_file, what_it_holds
from data.pixels import MAX_PIXELS, check_pixels, png_dimensions

ROOT = os.geteuid() == 0


# ---------------------------------------------------------------- paths
def _regular(p: Path) -> None:
    p.write_bytes(b"data")


def _folder(p: Path) -> None:
    p.mkdir()


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _device_link(p: Path) -> None:
    p.symlink_to("/dev/zero")


def _dangling(p: Path) -> None:
    p.symlink_to(p.with_name("gone"))


def _loop(p: Path) -> None:
    p.symlink_to(p)


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _under_a_file(p: Path) -> None:
    p.parent.joinpath("afile").write_bytes(b"x")


PATH_KINDS = {  # setup, what the message must say (None: readable)
    "regular": (_regular, None),
    "folder": (_folder, r"is a folder|Is a directory"),
    "fifo": (_fifo, r"FIFO"),
    "dev-zero-behind-a-link": (_device_link, r"character device"),
    "dangling-link": (_dangling, r"broken symbolic link|No such file"),
    "link-loop": (_loop, r"link loop|Too many levels"),
    "missing": (lambda p: None, r"does not exist|No such file"),
}


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_read_file_names_the_kind_and_never_blocks(tmp_path: Path, kind: str) -> None:
    setup, expect = PATH_KINDS[kind]
    path = tmp_path / "x.png"
    setup(path)
    if expect is None:
        assert read_file(path, "prediction") == b"data"
        return
    with pytest.raises(UserError, match=expect) as info:
        read_file(path, "prediction")
    assert "prediction" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_check_file_names_the_kind(tmp_path: Path, kind: str) -> None:
    setup, expect = PATH_KINDS[kind]
    path = tmp_path / "w.keras"
    setup(path)
    if expect is None:
        assert check_file(path, "--weights file") == 4
        return
    with pytest.raises(UserError, match=expect):
        check_file(path, "--weights file")


def test_check_file_refuses_an_empty_file_unless_allowed(tmp_path: Path) -> None:
    path = tmp_path / "e.keras"
    _empty(path)
    with pytest.raises(UserError, match=r"e.keras is empty \(0 bytes\)"):
        check_file(path, "checkpoint")
    assert check_file(path, "checkpoint", allow_empty=True) == 0


def test_read_file_refuses_a_file_above_its_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(UserError, match=r"big.bin is 1,000 bytes, more than the 999"):
        read_file(path, "cache entry", max_bytes=999)


def test_a_path_under_a_file_is_named(tmp_path: Path) -> None:
    _under_a_file(tmp_path / "y")
    with pytest.raises(UserError, match=r"Not a directory"):
        read_file(tmp_path / "afile" / "x.png", "prediction")


@pytest.mark.skipif(ROOT, reason="root reads a mode-000 file (the command-level cases drop that right)")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "locked.png"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(UserError, match=r"Permission denied"):
        read_file(path, "prediction")
    assert "not readable" in not_a_file(path, "prediction")


@pytest.mark.parametrize(
    ("head", "holds"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "a PNG image"),
        (b"PK\x03\x04rest", "a zip archive"),
        (b"\x89HDF\r\n\x1a\nxx", "an HDF5 file"),
        (b"\x1c\0\0\0TFL3\0\0", "a LiteRT"),
        (b"", "nothing"),
        (b'{"a": 1}', "JSON"),
        (b"\xff\xd8\xff\xe0", "a JPEG"),
    ],
)
def test_what_a_file_holds_is_named_from_its_first_bytes(head: bytes, holds: str) -> None:
    assert what_it_holds(head).startswith(holds)


# ---------------------------------------------------------------- pixels
def _png_header(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG that declares width x height pixels and holds one compressed row: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


BOMBS = {
    "100k-square-grey": _png_header(100_000, 100_000),
    "wide-strip": _png_header(2**31 - 1, 1),
    "tall-strip": _png_header(1, 2**31 - 1),
    "rgb-above-budget": _png_header(16384, 8192, colour=2),
    "palette-above-budget": _png_header(40000, 40000, colour=3),
    "16-bit-above-budget": _png_header(20000, 20000, bit_depth=16),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_png_bomb_is_refused_before_decoding(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    path.write_bytes(BOMBS[name])
    with pytest.raises(UserError, match=r"declares \d+x\d+ pixels .*decompression bomb"):
        read_png(path, "prediction")


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0)])
def test_a_png_of_zero_pixels_is_named(width: int, height: int) -> None:
    with pytest.raises(UserError, match=r"declares .* \(an empty image\)"):
        decode_png(_png_header(width, height), "p.png", "prediction")


def test_a_png_within_the_budget_decodes_exactly() -> None:
    array = (np.arange(64 * 128) % 34).astype(np.uint8).reshape(64, 128)
    data = encode_png(array)
    assert png_dimensions(data) == (64, 128)
    np.testing.assert_array_equal(decode_png(data, "p.png"), array)


def test_the_budget_admits_a_full_frame_and_refuses_one_pixel_more() -> None:
    check_pixels(1024, 2048, "f.png")
    check_pixels(MAX_PIXELS // 4096, 4096, "f.png")
    with pytest.raises(UserError):
        check_pixels(MAX_PIXELS // 4096 + 1, 4096, "f.png")


# ---------------------------------------------------------------- numbers
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e300", "0", "-0.005", "0.51", "x", ""])
def test_a_boundary_ratio_out_of_range_names_the_range(text: str) -> None:
    with pytest.raises(Exception, match=r"above 0 and at most 0.5"):
        RATIO(text)


def test_band_width_refuses_infinity_instead_of_overflowing() -> None:
    with pytest.raises(UserError, match=r"--boundary-ratio.*above 0 and at most 0.5"):
        band_width((1024, 2048), math.inf)
    assert band_width((1024, 2048), 0.5) == round(0.5 * math.hypot(1024, 2048))


@pytest.mark.parametrize("text", ["1e-300", "1e-320", "0.001", "1000", "inf", "nan", "-1"])
def test_a_temperature_out_of_range_names_the_range(text: str) -> None:
    with pytest.raises(Exception, match=r"from 0.01 to 100"):
        calibration.TEMPERATURE(text)


def _reference_nll(logits: np.ndarray, gt: np.ndarray, beta: float) -> float:
    z = logits.astype(np.float64).reshape(-1, logits.shape[-1]) * beta
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(z)), gt.reshape(-1)].sum())


@pytest.mark.parametrize("temperature", ["0.25", "0.2", "0.125", "0.01", "3", "100"])
def test_any_temperature_in_range_gives_the_exact_nll(temperature: str) -> None:
    """T = 0.25 used to end in `generator raised StopIteration` (no product chain reached F^4)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (16, 32, 19)).astype(np.float32)
    gt = rng.integers(0, 19, (16, 32)).astype(np.uint8)
    pred = logits.argmax(axis=2).astype(np.uint8)
    beta = Fraction(1 / calibration.TEMPERATURE(temperature))
    sums = calibration.frame_sums(logits, gt, pred, betas=(beta,))
    assert sums.t_nll[0] == pytest.approx(_reference_nll(logits, gt, float(beta)), rel=1e-4)


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        (Range(int, 1, 10), ["1", "10"], ["0", "11", "1.5", "x", "-1"]),
        (Range(float, 0, 1, low_open=True), ["1", "1e-9"], ["0", "inf", "nan", "1.0000001"]),
    ],
)
def test_a_range_takes_its_ends_and_nothing_beyond(spec: Range, good: list[str], bad: list[str]) -> None:
    for text in good:
        spec(text)
    for text in bad:
        with pytest.raises(UserError, match=str(spec)):
            spec.check(text, "--option")
