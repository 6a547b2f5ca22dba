"""What `bench predict --dataset PATH` predicts: any images, with ground truth only when scoring asks for it.

PATH may be
- a Cityscapes root: the images of `leftImg8bit/{split}/` (no `gtFine/` needed), or, with `--evaluate`,
  the frames of `gtFine/{split}/` with their images (`data.cityscapes.list_samples`);
- a plain folder of images, searched recursively, any names (`.png`, `.jpg`, `.jpeg`, `.bmp`);
- one image file;
- an ACDC, Dark Zurich, Foggy Cityscapes or BDD100K root (data/layouts.py; `--dataset-format` names the
  layout where a folder could be read two ways): its labelled frames of `split`, keyed as the layout keys
  them (ACDC's `{stem}`, Foggy's `{stem}_beta_{beta}`), scored with `--evaluate` in the labels' own encoding.
A plain image's key is its path below the folder without the extension, `/` written as `_`: the output
`OUT/{key}_leftImg8bit.png` keeps it. Two images that would share a key are refused, never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data.cityscapes import DatasetError, check_image, list_images, list_samples, resolve_root
from data.layouts import list_frames, read_as, with_unique_keys

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class ImageFrame:
    """An image with no Cityscapes name and no ground truth: what the prediction loop and file sinks need."""

    key: str
    image: Path
    label_ids: None = None


def frames_to_predict(
    path: str | os.PathLike | None, split: str, *, evaluate: bool = False, fmt: str | None = None
) -> list:
    """The frames of `path` (see the module docstring), sorted by key; `evaluate` needs a labelled root;
    `fmt`: the layout `--dataset-format` names (None: the one the folder holds)."""
    if path is not None and Path(path).expanduser().is_file():
        if fmt not in (None, "cityscapes"):
            raise DatasetError(f"--dataset-format {fmt} names a dataset root: {path} is one image file")
        if evaluate:
            raise DatasetError(f"--evaluate needs ground truth: {path} is one image; pass a Cityscapes root")
        image = Path(path).expanduser()
        _check_extension(image)
        check_image(image)
        return [ImageFrame(_stem(image.name), image)]
    root = resolve_root(path)
    layout = read_as(root, fmt)
    if layout != "cityscapes":
        return with_unique_keys(list_frames(root, layout, split))
    if evaluate:
        if not (root / "gtFine").is_dir():
            raise DatasetError(
                f"--evaluate needs ground truth: {root} has no gtFine/ folder; point --dataset at the "
                f"Cityscapes root that holds leftImg8bit/ and gtFine/, or leave out --evaluate"
            )
        return list_samples(root, split, require_images=True)
    if (root / "leftImg8bit").is_dir():
        return list_images(root, split)
    return _plain_folder(root)


def _plain_folder(root: Path) -> list[ImageFrame]:
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root, onerror=_unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            image = Path(folder) / name
            key = _stem(str(image.relative_to(root)).replace(os.sep, "_"))
            if key in found:
                raise DatasetError(
                    f"{found[key]} and {image} would both be predicted as {key}_leftImg8bit.png: rename one"
                )
            check_image(image)
            found[key] = image
    if not found:
        raise DatasetError(
            f"{root} holds no images: expected a Cityscapes root (leftImg8bit/), or a folder of "
            f"{', '.join(IMAGE_EXTENSIONS)} files (searched recursively), or one image file"
        )
    return [ImageFrame(key, found[key]) for key in sorted(found)]


def _stem(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    return stem[: -len("_leftImg8bit")] if stem.endswith("_leftImg8bit") else stem


def _check_extension(image: Path) -> None:
    if not image.name.lower().endswith(IMAGE_EXTENSIONS):
        raise DatasetError(f"{image} is not an image this tool reads: use {', '.join(IMAGE_EXTENSIONS)}")


def _unreadable(exc: OSError) -> None:
    raise DatasetError(
        f"cannot read the folder {exc.filename} ({exc.strerror}): its images would be left out"
    )
