"""Cityscapes layout discovery: list the samples of a split from a root in the standard layout.

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_{labelIds,instanceIds}.png
    ROOT/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_polygons.json

Ground truth decides which frames exist (test images have no usable GT, and GT without images is allowed
for label-only evaluation). Errors are `DatasetError` with a message that names the path and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from data.errors import UserError

ENV_VAR = "CITYSCAPES_DATASET"
SPLITS = ("train", "val", "test")
_GT_NAME = re.compile(r"^(?P<city>[a-z_]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_gtFine_labelIds\.png$")
_IMG_NAME = re.compile(r"^(?P<city>[a-z_]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")


class DatasetError(UserError):
    """A dataset root or split that cannot be used, with a message meant for the user."""


@dataclass(frozen=True)
class Sample:
    """One frame of a split; `image` is None when only ground truth is present."""

    city: str
    seq: str
    frame: str
    image: Path | None
    label_ids: Path
    instance_ids: Path
    polygons: Path

    @property
    def key(self) -> str:
        """`{city}_{seq}_{frame}`: the stem cityscapesScripts matches predictions by."""
        return f"{self.city}_{self.seq}_{self.frame}"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset root: the argument, else `$CITYSCAPES_DATASET`; it must exist."""
    if root is None or str(root) == "":
        root = os.environ.get(ENV_VAR)
        if not root:
            raise DatasetError(f"no dataset root given: pass a path or set {ENV_VAR}=/path/to/cityscapes")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"dataset root {path} does not exist: check the path (or {ENV_VAR})")
    return path


def list_samples(root: str | os.PathLike | None, split: str, require_images: bool = False) -> list[Sample]:
    """Samples of `split` sorted by (city, seq, frame).

    Every image must have its GT (named in the error otherwise); GT without an image is allowed unless
    `require_images` (training and prediction need pixels).
    """
    root = resolve_root(root)
    for sub in ("leftImg8bit", "gtFine"):
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root} has no {sub}/ folder: point at the Cityscapes root that holds "
                f"leftImg8bit/ and gtFine/"
            )
    gt_dir, img_dir = root / "gtFine" / split, root / "leftImg8bit" / split

    samples: dict[str, Sample] = {}
    for path in sorted(gt_dir.glob("*/*_gtFine_labelIds.png")):
        m = _GT_NAME.match(path.name)
        if not m:
            continue
        city, seq, frame = m["city"], m["seq"], m["frame"]
        stem = path.name[: -len("_gtFine_labelIds.png")]
        image = img_dir / city / f"{stem}_leftImg8bit.png"
        samples[stem] = Sample(
            city,
            seq,
            frame,
            image if image.is_file() else None,
            path,
            path.with_name(f"{stem}_gtFine_instanceIds.png"),
            path.with_name(f"{stem}_gtFine_polygons.json"),
        )
    if not samples:
        raise DatasetError(
            f"split '{split}' is empty: no *_gtFine_labelIds.png under {gt_dir} "
            f"(splits present: {', '.join(_present_splits(root)) or 'none'})"
        )

    for path in sorted(img_dir.glob("*/*_leftImg8bit.png")):
        m = _IMG_NAME.match(path.name)
        if m and path.name[: -len("_leftImg8bit.png")] not in samples:
            raise DatasetError(
                f"image {path} has no ground truth: expected "
                f"{gt_dir / m['city'] / path.name.replace('leftImg8bit', 'gtFine_labelIds')}"
            )
    if require_images:
        missing = [s.label_ids for s in samples.values() if s.image is None]
        if missing:
            raise DatasetError(
                f"{len(missing)} ground-truth file(s) of split '{split}' have no image, e.g. "
                f"{missing[0]}: expected it under {img_dir}"
            )
    return [samples[k] for k in sorted(samples)]


def _present_splits(root: Path) -> list[str]:
    return [s for s in SPLITS if any((root / "gtFine" / s).glob("*/*_gtFine_labelIds.png"))]


def list_images(root: str | os.PathLike | None, split: str) -> list[Sample]:
    """Frames of `split` that have an image, sorted like `list_samples`, whether or not they have GT.

    What a test-server submission must cover: the test split's GT is a dummy and users may not have it.
    The GT paths of each sample point where that frame's ground truth would be; they need not exist.
    """
    root = resolve_root(root)
    img_dir = root / "leftImg8bit" / split
    gt_dir = root / "gtFine" / split
    frames = []
    for path in sorted(img_dir.glob("*/*_leftImg8bit.png")):
        m = _IMG_NAME.match(path.name)
        if not m:
            continue
        stem = path.name[: -len("_leftImg8bit.png")]
        gt = gt_dir / m["city"] / f"{stem}_gtFine_"
        frames.append(
            Sample(
                m["city"],
                m["seq"],
                m["frame"],
                path,
                Path(f"{gt}labelIds.png"),
                Path(f"{gt}instanceIds.png"),
                Path(f"{gt}polygons.json"),
            )
        )
    if not frames:
        present = [s for s in SPLITS if any((root / "leftImg8bit" / s).glob("*/*_leftImg8bit.png"))]
        raise DatasetError(
            f"split '{split}' has no images: no *_leftImg8bit.png under {img_dir} "
            f"(splits with images: {', '.join(present) or 'none'})"
        )
    return sorted(frames, key=lambda s: s.key)
