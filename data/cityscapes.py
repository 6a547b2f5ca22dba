"""Cityscapes layout discovery: list the samples of a split from a root in the standard layout.

    ROOT/leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    ROOT/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_{labelIds,instanceIds}.png
    ROOT/gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_polygons.json

Ground truth decides which frames exist: exactly the files cityscapesScripts' evaluation finds
(`gtFine/{split}/*/*_gtFine_labelIds.png`, any city folder name), each named `{city}_{seq}_{frame}` as its
`getCsFileInfo` splits names; a name that does not split so is an error naming the file, never a skip.
`leftImg8bit/` is needed for training and prediction only: evaluation works from `gtFine/` alone (what a
user has who downloaded only the fine annotations). Errors are `DatasetError` naming the path and the fix.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from data.errors import UserError

ENV_VAR = "CITYSCAPES_DATASET"
SPLITS = ("train", "val", "test")
GT_SUFFIX = "_gtFine_labelIds.png"
IMAGE_SUFFIX = "_leftImg8bit.png"
GT_SEARCH = f"*/*{GT_SUFFIX}"
"""Below `gtFine/{split}/`: cityscapesScripts' `groundTruthSearch` (`gtFine/val/*/*_gtFine_labelIds.png`)."""


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
        what = "is not a folder" if path.exists() else "does not exist"
        raise DatasetError(f"dataset root {path} {what}: check the path (or {ENV_VAR})")
    return path


def parse_name(path: Path, suffix: str) -> tuple[str, str, str]:
    """(city, seq, frame) of `{city}_{seq}_{frame}{suffix}`, split at `_` as cityscapesScripts does.

    Any city name works (`lindau2`, `Köln`); a name with more or fewer parts is an error naming the file:
    cityscapesScripts could not pair it with a prediction either.
    """
    parts = path.name[: -len(suffix)].split("_")
    if len(parts) != 3 or not all(parts):
        raise DatasetError(
            f"cannot parse the file name {path}: expected {{city}}_{{seq}}_{{frame}}{suffix} with no "
            f"other '_' (e.g. frankfurt_000000_000019{suffix}); rename the file or move it out of the dataset"
        )
    return parts[0], parts[1], parts[2]


def list_samples(root: str | os.PathLike | None, split: str, require_images: bool = False) -> list[Sample]:
    """Samples of `split` sorted by (city, seq, frame).

    Every image must have its GT (named in the error otherwise); GT without an image, and a root without
    `leftImg8bit/`, are allowed unless `require_images` (training and prediction need pixels).
    """
    root = resolve_root(root)
    if not split or split in (".", "..") or "/" in split or os.sep in split:
        raise DatasetError(f"split {split!r} is not a folder name under gtFine/: use train, val or test")
    needed = ("leftImg8bit", "gtFine") if require_images else ("gtFine",)
    for sub in needed:
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root} has no {sub}/ folder: point at the Cityscapes root that holds "
                f"{' and '.join(f'{n}/' for n in needed)}"
            )
    gt_dir, img_dir = root / "gtFine" / split, root / "leftImg8bit" / split

    _check_listable(gt_dir)
    samples: dict[str, Sample] = {}
    for path in _glob(gt_dir, GT_SEARCH):
        city, seq, frame = parse_name(path, GT_SUFFIX)
        stem = f"{city}_{seq}_{frame}"
        if stem in samples:
            raise DatasetError(
                f"two ground-truth files are named {path.name}: {samples[stem].label_ids} and {path}; "
                f"predictions are matched by name, so keep one of them"
            )
        image = img_dir / path.parent.name / f"{stem}{IMAGE_SUFFIX}"
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
            f"split '{split}' is empty: no *{GT_SUFFIX} under {gt_dir} "
            f"(splits present: {', '.join(_present_splits(root)) or 'none'})"
        )

    for path in _glob(img_dir, f"*/*{IMAGE_SUFFIX}"):
        city, seq, frame = parse_name(path, IMAGE_SUFFIX)
        stem = f"{city}_{seq}_{frame}"
        if stem not in samples or samples[stem].image != path:
            raise DatasetError(
                f"image {path} has no ground truth: expected {gt_dir / path.parent.name / (stem + GT_SUFFIX)}"
            )
    if require_images:
        missing = [s.label_ids for s in samples.values() if s.image is None]
        if missing:
            raise DatasetError(
                f"{len(missing)} ground-truth file(s) of split '{split}' have no image, e.g. "
                f"{missing[0]}: expected it under {img_dir}"
            )
    return [samples[k] for k in sorted(samples)]


def _check_listable(split_dir: Path) -> None:
    """A split or city folder that cannot be listed would silently drop its frames: name it instead."""
    if not split_dir.is_dir():
        return
    folders = (
        [split_dir, *(p for p in split_dir.iterdir() if p.is_dir())]
        if os.access(split_dir, os.R_OK | os.X_OK)
        else [split_dir]
    )
    for folder in folders:
        if not os.access(folder, os.R_OK | os.X_OK):
            raise DatasetError(
                f"cannot read the folder {folder} (permission denied): its frames would be left out"
            )


def _present_splits(root: Path) -> list[str]:
    return [s for s in SPLITS if _glob(root / "gtFine" / s, GT_SEARCH)]


def _glob(folder: Path, pattern: str) -> list[Path]:
    """Sorted `glob.glob` matches: like cityscapesScripts, hidden files (`._x` copies) are not matched."""
    return sorted(Path(p) for p in glob.glob(os.path.join(glob.escape(str(folder)), pattern)))


def list_images(root: str | os.PathLike | None, split: str) -> list[Sample]:
    """Frames of `split` that have an image, sorted like `list_samples`, whether or not they have GT.

    What a test-server submission must cover: the test split's GT is a dummy and users may not have it.
    The GT paths of each sample point where that frame's ground truth would be; they need not exist.
    """
    root = resolve_root(root)
    if not split or split in (".", "..") or "/" in split or os.sep in split:
        raise DatasetError(f"split {split!r} is not a folder name under leftImg8bit/: use train, val or test")
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    _check_listable(img_dir)
    frames: dict[str, Sample] = {}
    for path in _glob(img_dir, f"*/*{IMAGE_SUFFIX}"):
        city, seq, frame = parse_name(path, IMAGE_SUFFIX)
        stem = f"{city}_{seq}_{frame}"
        if stem in frames:
            raise DatasetError(
                f"two images are named {path.name}: {frames[stem].image} and {path}; predictions are "
                f"matched by name, so keep one of them"
            )
        gt = gt_dir / path.parent.name / f"{stem}_gtFine_"
        frames[stem] = Sample(
            city,
            seq,
            frame,
            path,
            Path(f"{gt}labelIds.png"),
            Path(f"{gt}instanceIds.png"),
            Path(f"{gt}polygons.json"),
        )
    if not frames:
        present = [s for s in SPLITS if _glob(root / "leftImg8bit" / s, f"*/*{IMAGE_SUFFIX}")]
        raise DatasetError(
            f"split '{split}' has no images: no *{IMAGE_SUFFIX} under {img_dir} "
            f"(splits with images: {', '.join(present) or 'none'})"
        )
    return [frames[k] for k in sorted(frames)]
