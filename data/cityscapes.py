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
from data.pixels import check_image_file, check_png_file

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
    _check_split(split, "gtFine")
    needed = ("leftImg8bit", "gtFine") if require_images else ("gtFine",)
    for sub in needed:
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root} has no {sub}/ folder: point at the Cityscapes root that holds "
                f"{' and '.join(f'{n}/' for n in needed)}"
            )
    gt_dir, img_dir = root / "gtFine" / split, root / "leftImg8bit" / split

    _check_listable(gt_dir)
    ground_truth = _discover(gt_dir, GT_SUFFIX, "ground-truth files")
    if not ground_truth:
        raise DatasetError(
            f"split '{split}' is empty: no *{GT_SUFFIX} under {gt_dir} "
            f"(splits present: {', '.join(_present_splits(root)) or 'none'})"
        )
    images = _discover(img_dir, IMAGE_SUFFIX, "images")
    for stem, (_, _, _, path) in images.items():
        gt = ground_truth.get(stem)
        if gt is None or gt[3].parent.name != path.parent.name:
            raise DatasetError(
                f"image {path} has no ground truth: expected {gt_dir / path.parent.name / (stem + GT_SUFFIX)}"
            )
    samples = {
        stem: Sample(
            city,
            seq,
            frame,
            images[stem][3] if stem in images else None,
            path,
            path.with_name(f"{stem}_gtFine_instanceIds.png"),
            path.with_name(f"{stem}_gtFine_polygons.json"),
        )
        for stem, (city, seq, frame, path) in ground_truth.items()
    }
    if require_images:
        missing = [s.label_ids for s in samples.values() if s.image is None]
        if missing:
            raise DatasetError(
                f"{len(missing)} ground-truth file(s) of split '{split}' have no image, e.g. "
                f"{missing[0]}: expected it under {img_dir}"
            )
        for sample in samples.values():
            check_image(sample.image)
    return [samples[k] for k in sorted(samples)]


def check_image(path: Path) -> None:
    """An image that is no readable regular file, is empty, is no PNG, JPEG or BMP, declares more pixels
    than the budget or is a PNG cut short fails here, named, before any work: TensorFlow's reader would
    block on a FIFO for ever and fail on a folder, 0 bytes or a truncated file steps into a run."""
    try:
        check_image_file(path, "image")
    except UserError as exc:
        raise DatasetError(str(exc)) from None


def check_training_labels(samples: list[Sample]) -> None:
    """`check_image` for the label files training decodes with TensorFlow (the evaluator checks its own)."""
    for sample in samples:
        try:
            check_png_file(sample.label_ids, "training labels", "restore the frame's *_gtFine_labelIds.png")
        except UserError as exc:
            raise DatasetError(str(exc)) from None


def _check_split(split: str, under: str) -> None:
    if not split or split in (".", "..") or "/" in split or os.sep in split:
        raise DatasetError(f"split {split!r} is not a folder name under {under}/: use train, val or test")


def _discover(folder: Path, suffix: str, what: str) -> dict[str, tuple[str, str, str, Path]]:
    """{`{city}_{seq}_{frame}`: (city, seq, frame, path)} of every `*/*{suffix}` file under `folder`: the
    one discovery of both ground truth and images; two files of one name are an error (`what` names them)."""
    found: dict[str, tuple[str, str, str, Path]] = {}
    for path in _glob(folder, f"*/*{suffix}"):
        city, seq, frame = parse_name(path, suffix)
        stem = f"{city}_{seq}_{frame}"
        if stem in found:
            raise DatasetError(
                f"two {what} are named {path.name}: {found[stem][3]} and {path}; predictions are matched "
                f"by name, so keep one of them"
            )
        found[stem] = (city, seq, frame, path)
    return found


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
    _check_split(split, "leftImg8bit")
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    _check_listable(img_dir)
    frames = {}
    for stem, (city, seq, frame, path) in _discover(img_dir, IMAGE_SUFFIX, "images").items():
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
        check_image(path)
    if not frames:
        present = [s for s in SPLITS if _glob(root / "leftImg8bit" / s, f"*/*{IMAGE_SUFFIX}")]
        raise DatasetError(
            f"split '{split}' has no images: no *{IMAGE_SUFFIX} under {img_dir} "
            f"(splits with images: {', '.join(present) or 'none'})"
        )
    return [frames[k] for k in sorted(frames)]
