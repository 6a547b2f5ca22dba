"""Validate a test-server submission zip against the frames of a split, before an upload is spent on it.

What the Cityscapes server accepts: one PNG per image of the split (1525 for the real test set), named so
that `{city}_{seq}_{frame}*` matches exactly one file, at the image's full resolution, single-channel 8-bit
label IDs (0..33; not train IDs, not colour), and nothing else in the archive. Every problem is collected
(not just the first), each naming the file inside the zip and the fix. No TensorFlow here.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from bench.common.numbers import count
from bench.evaluation.matching import prediction_keys
from bench.evaluation.png import decode_png, png_header
from bench.evaluation.scoring import VOID_LOOKALIKE_IDS
from data.errors import UserError
from data.files import not_a_file
from data.labels import CLASS_NAMES, NUM_LABEL_IDS

COLOUR_TYPES = {2: "an RGB image", 3: "a palette (colour) image", 4: "grey with alpha", 6: "an RGBA image"}
TRAIN_ID_SHARE = 0.25
"""A file with only values 0..18 and more than this share of pixels on void label ids holds train IDs."""
MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    entry: str  # the file inside the zip, or the frame key for a missing frame
    message: str  # what is wrong and the fix

    def __str__(self) -> str:
        return f"{self.entry}: {self.message}"


SERVER_TEST_FRAMES = 1525  # Cityscapes fine test split
SERVER_SIZE = (1024, 2048)  # (height, width) of every Cityscapes frame


@dataclass(frozen=True)
class CheckReport:
    """A zip that passed: how many frames it covers and at which sizes."""

    path: Path
    n_frames: int
    sizes: tuple[tuple[int, int], ...]  # distinct (height, width)
    split: str = "test"

    def not_ready(self) -> list[str]:
        """Why the server would not score this zip as a test submission, though its format is valid."""
        reasons = []
        if self.split != "test":
            reasons.append(f"it holds the '{self.split}' split: the server scores only the test split")
        if self.n_frames != SERVER_TEST_FRAMES:
            reasons.append(
                f"the server's test split has {SERVER_TEST_FRAMES} frames, this zip {self.n_frames}"
            )
        if self.sizes != (SERVER_SIZE,):
            reasons.append(f"the server expects {SERVER_SIZE[0]}x{SERVER_SIZE[1]} (HxW) frames")
        return reasons

    def summary(self) -> str:
        sizes = ", ".join(f"{h}x{w}" for h, w in self.sizes)
        head = (
            f"{self.path}: {count(self.n_frames, 'frame')} of split '{self.split}', one single-channel 8-bit "
            f"label-ID PNG each at the frames' resolution ({sizes} HxW), nothing else"
        )
        reasons = self.not_ready()
        if not reasons:
            return f"{head}: ready to upload"
        return f"{head}: format valid, but not ready to upload: {'; '.join(reasons)}"


def check_submission(zip_path: str | os.PathLike, dataset: str | os.PathLike | None, split: str = "test"):
    """The `CheckReport` of a valid zip; a UserError listing every problem (file and fix) otherwise."""
    from data.cityscapes import list_images

    zip_path = Path(zip_path)
    frames = {s.key: s for s in list_images(dataset, split)}
    if not zip_path.is_file():
        raise UserError(f"{not_a_file(zip_path, 'submission')} (write it with `bench submit --out`)")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{zip_path} is not a readable zip archive ({exc}): write it again") from None
    problems: list[Problem] = []
    sizes: set[tuple[int, int]] = set()
    with archive:
        by_key: dict[str, list[str]] = {}
        lengths = {len(key) for key in frames}
        for info in archive.infolist():
            if info.is_dir():
                continue
            unsafe = _unsafe(info)
            if unsafe:
                problems.append(Problem(info.filename, unsafe))
                continue
            keys = prediction_keys(PurePosixPath(info.filename).name, frames.keys(), lengths)
            if not info.filename.endswith(".png"):
                problems.append(Problem(info.filename, "is not a PNG: the archive must hold the PNGs alone"))
            elif not keys:
                problems.append(
                    Problem(
                        info.filename,
                        f"matches no image of split '{split}' ({{city}}_{{seq}}_{{frame}}*.png): remove it, "
                        f"or check --split and --dataset",
                    )
                )
            for key in keys:
                by_key.setdefault(key, []).append(info.filename)
        missing = [key for key in frames if key not in by_key]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            problems.append(
                Problem(
                    shown,
                    f"{len(missing)} of the {len(frames)} frames of split '{split}' have no prediction: "
                    f"predict every frame (`bench submit` does)",
                )
            )
        for key, names in by_key.items():
            if len(names) > 1:
                problems.append(
                    Problem(
                        ", ".join(names),
                        f"{len(names)} files match frame {key}: the server needs exactly one; keep one",
                    )
                )
                continue
            expected = _image_size(frames[key].image)
            data = _read(archive, archive.getinfo(names[0]), expected)
            problem = data if isinstance(data, Problem) else _check_png(names[0], data, expected)
            if problem:
                problems.append(problem)
            else:
                sizes.add(expected)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise UserError(
            f"{zip_path} would not be accepted ({len(problems)} problem(s)); fix them and check again:\n"
            f"{listed}{more}"
        )
    return CheckReport(zip_path, len(frames), tuple(sorted(sizes)), split)


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    """What makes an entry unsafe to unpack (a name leaving the folder, a link, a password), or None."""
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0]:
        return "has an unsafe name (absolute, '..' or '\\'): store each PNG under a plain file name"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link, not a file: store the PNG itself"
    if info.flag_bits & 0x1:
        return "is encrypted: write the zip without a password"
    return None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, expected: tuple[int, int]) -> bytes | Problem:
    """The entry's bytes, read only when its declared size is one a label PNG of `expected` can have."""
    height, width = expected
    limit = height * (width + 1) * 2 + (1 << 20)  # an uncompressed PNG, twice over, plus 1 MiB of chunks
    if info.file_size > limit:
        return Problem(
            info.filename,
            f"declares {info.file_size} bytes uncompressed ({info.compress_size} stored), more than a "
            f"{width}x{height} label PNG can take ({limit}): a zip bomb or a damaged zip; write it again",
        )
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
        return Problem(info.filename, f"cannot be read ({exc}): write the zip again")


def _image_size(path: Path) -> tuple[int, int]:
    if not path.is_file():
        raise UserError(f"{not_a_file(path, 'image')} (the dataset's leftImg8bit images must be PNG files)")
    with open(path, "rb") as f:
        header = png_header(f.read(26))
    if header is None:
        raise UserError(f"image {path} is not a PNG file: the dataset's leftImg8bit images must be PNGs")
    return header[0], header[1]


def _check_png(name: str, data: bytes, expected: tuple[int, int]) -> Problem | None:
    """What is wrong with one prediction file, or None."""
    header = png_header(data)
    if header is None:
        return Problem(name, "is not a PNG file: write single-channel 8-bit PNGs of label IDs")
    height, width, bit_depth, colour_type = header
    if colour_type in COLOUR_TYPES:
        return Problem(
            name,
            f"is {COLOUR_TYPES[colour_type]}: write single-channel 8-bit label IDs "
            f"(colourised predictions are for viewing only)",
        )
    if bit_depth != 8:
        return Problem(name, f"is {bit_depth}-bit: write 8-bit single-channel PNGs of label IDs")
    if (height, width) != expected:
        return Problem(
            name,
            f"is {height}x{width} (HxW) but its image is {expected[0]}x{expected[1]}: predict at full "
            f"resolution (resize the logits, not the arg-max, back to the image)",
        )
    try:
        labels = decode_png(data, name, "prediction")
    except UserError as exc:
        return Problem(name, str(exc))
    high = int(labels.max())
    if high >= NUM_LABEL_IDS:
        fix = (
            "255 is the void value of train-ID images: write label IDs (data.labels.to_label_ids converts)"
            if high == 255
            else "write Cityscapes label IDs 0..33"
        )
        return Problem(name, f"has value {high}, which is no label ID (0..{NUM_LABEL_IDS - 1}): {fix}")
    if high < len(CLASS_NAMES):  # only values 0..18, where train IDs live
        on_void = np.isin(labels, VOID_LOOKALIKE_IDS).mean()
        if on_void > TRAIN_ID_SHARE:
            return Problem(
                name,
                f"looks like train IDs ({100 * on_void:.0f}% of its pixels are void label ids 0..18): "
                f"write label IDs (data.labels.to_label_ids converts train IDs)",
            )
    return None
