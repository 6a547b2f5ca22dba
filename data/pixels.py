"""The one pixel budget of every image decode: a file's declared dimensions are checked before any pixel is
decoded, so a decompression bomb (a small PNG whose header claims 100000 x 100000 pixels) is refused with
its size instead of filling memory, and a zero-sized one is named instead of crashing a decoder.

`png_dimensions` reads them from the IHDR chunk (the first 24 bytes of every PNG); readers of other
formats call `check_pixels` with what their header declares.
"""

from __future__ import annotations

import os

from data.errors import UserError

MAX_PIXELS = 64 * 1024 * 1024
"""64 Mpx: 32 full Cityscapes frames (2048 x 1024). A frame's decoded bytes stay below 256 MiB (RGBA, 8 bit),
and the evaluator's int64 work arrays below 512 MiB per frame."""

MAX_SIDE = 1 << 16
"""No side above 65536 pixels: a frame is 2048 wide; more is a header that lies or an image no model takes."""

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_pixels(height: int, width: int, path: str | os.PathLike, role: str = "image") -> None:
    """Raise UserError when an image of `height` x `width` pixels is empty or above the pixel budget."""
    if height <= 0 or width <= 0:
        raise UserError(f"{role} {path} declares {width}x{height} pixels (an empty image): write it again")
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise UserError(
            f"{role} {path} declares {width}x{height} pixels ({(height * width) >> 20:,} Mpx), more than "
            f"the {MAX_PIXELS >> 20} Mpx (sides <= {MAX_SIDE}) any reader here decodes: a decompression "
            f"bomb or a damaged header; give the real image"
        )


def png_dimensions(head: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR chunk (`head` = at least its first 24 bytes), None when `head`
    does not start like a PNG."""
    if len(head) < 24 or not head.startswith(PNG_MAGIC) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def check_png(head: bytes, path: str | os.PathLike, role: str = "image") -> None:
    """`check_pixels` for a PNG's bytes (or its first 24); a no-op for other bytes (their reader says so)."""
    dims = png_dimensions(head)
    if dims is not None:
        check_pixels(*dims, path, role)


JPEG_MAGIC = b"\xff\xd8\xff"
BMP_MAGIC = b"BM"
_MAGIC = {"PNG": PNG_MAGIC, "JPEG": JPEG_MAGIC, "BMP": BMP_MAGIC}
_NAMED = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
"""The last 12 bytes of every complete PNG (its empty IEND chunk): a file cut short lacks them."""


def check_png_file(
    path: str | os.PathLike, role: str = "image", fix: str = "restore the frame's PNG"
) -> None:
    """Before a reader that fails late (TensorFlow's, steps into a run) opens it: `path` is a readable,
    non-empty regular file (`data.files.check_file`), a PNG, within the pixel budget, and complete (it ends
    with its IEND chunk). Reads its first 33 and last 12 bytes, decodes nothing."""
    from data.files import check_file

    size = check_file(path, role, fix=fix)
    try:
        with open(path, "rb") as f:
            head = f.read(33)
            f.seek(max(0, size - len(PNG_END)))
            tail = f.read()
    except OSError as exc:
        raise UserError(f"cannot read {role} {path}: {exc.strerror or exc}; {fix}") from None
    if not head.startswith(PNG_MAGIC):
        raise UserError(f"{role} {path} is not a PNG file: {fix}")
    check_png(head, path, role)
    if not tail.endswith(PNG_END):
        raise UserError(
            f"{role} {path} is truncated or corrupt (it does not end with a PNG's IEND chunk): {fix}"
        )


def check_image_file(
    path: str | os.PathLike, role: str = "image", fix: str = "restore the frame's image"
) -> None:
    """`check_png_file` for a PNG; for a JPEG or BMP (BDD100K frames, a folder of photos), a readable
    regular file whose header's dimensions (read by Pillow, which decodes no pixel to read them) are within
    the budget. Any other content is named: the frame decoder takes these three formats."""
    from data.files import check_file

    check_file(path, role, fix=fix)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise UserError(f"cannot read {role} {path}: {exc.strerror or exc}; {fix}") from None
    holds = next((kind for kind, magic in _MAGIC.items() if head.startswith(magic)), None)
    named = _NAMED.get(os.path.splitext(os.fspath(path))[1].lower())
    if named and holds and holds != named:  # a name that says another format than the bytes
        raise UserError(f"{role} {path} is not a {named} file (it holds a {holds} image): {fix}")
    if holds == "PNG":
        check_png_file(path, role, fix)
        return
    if holds is None:
        raise UserError(f"{role} {path} is not a {named or 'PNG, JPEG or BMP'} image: {fix}")
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError:
        width = height = MAX_SIDE + 1
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{role} {path} is not a readable image ({exc}): {fix}") from None
    check_pixels(height, width, path, role)
