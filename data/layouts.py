"""The datasets beyond Cityscapes val that share its 19 training classes, each in the layout it ships in.

    cityscapes  ROOT/leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/ (label IDs, instance IDs)
    acdc        ROOT/rgb_anon/{fog,night,rain,snow}/{split}/{sequence}/{stem}_rgb_anon.png
                ROOT/gt/{condition}/{split}/{sequence}/{stem}_gt_labelTrainIds.png (+ _gt_invIds.png)
    darkzurich  ROOT/rgb_anon/val/night/{sequence}/{stem}_rgb_anon.png
                ROOT/gt/val/night/{sequence}/{stem}_gt_labelTrainIds.png (+ _gt_invIds.png)
    foggy       ROOT/leftImg8bit_foggy/{split}/{city}/{stem}_leftImg8bit_foggy_beta_{0.005,0.01,0.02}.png
                with the ordinary ROOT/gtFine/ labels of Cityscapes
    bdd100k     ROOT/images/10k/{split}/{name}.jpg, ROOT/labels/sem_seg/masks/{split}/{name}.png (train IDs)

Sources of these layouts: ACDC as mmsegmentation's configs read it (`img_suffix='_rgb_anon.png'`,
`seg_map_suffix='_gt_labelTrainIds.png'`, `rgb_anon/{condition}/{split}` beside `gt/{condition}/{split}`;
e.g. w1oves/Rein configs/_base_/datasets/night-acdc_1024x1024.py) and the archives gt_trainval.zip /
rgb_anon_trainvaltest.zip of https://acdc.vision.ee.ethz.ch (test GT withheld for the server); Dark Zurich as
mmsegmentation's `DarkZurichDataset` (mmseg/datasets/dark_zurich.py: the same two suffixes) and its
configs/pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024_dark-zurich-1920x1080.py (`rgb_anon/val/night/
GOPR0356`, `gt/val/night/GOPR0356`); Foggy Cityscapes (Sakaridis et al., IJCV 2018) as its
leftImg8bit_trainvaltest_foggy.zip unpacks, beside Cityscapes' gtFine; BDD100K as its 10K semantic
segmentation release unpacks (bdd100k_images_10k.zip, bdd100k_sem_seg_labels_trainval.zip; mmsegmentation's
`BDD100KDataset`: `.jpg` images, `.png` train-ID masks; SysCV/bdd100k-models sem_seg configs).

Invalid masks (`_gt_invIds.png`, 1 = invalid, 0 = valid): regions whose content the adverse image does not
show, labelled from the normal-condition reference. The datasets' standard mIoU counts every labelled pixel,
invalid ones included; the valid-only score is a second figure (the BRAVO evaluation, valeoai/bravo_challenge
bravo_toolkit/eval/eval_script.py: `hist` over all pixels, `hist_valid` where the mask is 0). Both are kept.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from data.cityscapes import DatasetError, check_image, list_samples, resolve_root

FORMATS = ("cityscapes", "acdc", "darkzurich", "foggy", "bdd100k")
ACDC_CONDITIONS = ("fog", "night", "rain", "snow")
FOG_BETAS = ("0.005", "0.01", "0.02")
ALL = "all"
"""The condition of a dataset that has one (Cityscapes, BDD100K); also the union row of ACDC."""


@dataclass(frozen=True)
class Frame:
    """One frame of a generalization dataset: its image, its labels and how they are encoded."""

    key: str  # unique within the dataset: names the frame in errors and predictions
    condition: str  # "fog" .. "snow" (ACDC), "night" (Dark Zurich), "beta_0.01" (Foggy), "all"
    image: Path
    labels: Path
    encoding: str  # "label": Cityscapes label IDs; "train": train IDs, 255 ignored
    instances: Path | None = None  # *_instanceIds.png where the dataset has them (iIoU), else None
    invalid: Path | None = None  # *_gt_invIds.png where the dataset has it


def detect_format(root: str | os.PathLike, given: str | None = None) -> str:
    """The layout of `root`: `given` (checked), else the one whose top folders `root` holds; several
    candidates (a Cityscapes root that also holds leftImg8bit_foggy/) need `--dataset-format`."""
    root = resolve_root(root)
    if given is not None:
        if given not in FORMATS:
            raise DatasetError(f"--dataset-format {given!r} is not one of {', '.join(FORMATS)}")
        return given
    found = [name for name in FORMATS if _looks_like(root, name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise DatasetError(
            f"{root} could be read as {' or '.join(found)}: name one with --dataset-format "
            f"({', '.join(found)})"
        )
    raise DatasetError(
        f"{root} holds none of the supported layouts: expected leftImg8bit/ + gtFine/ (cityscapes), "
        f"rgb_anon/<condition>/ + gt/ (acdc), rgb_anon/val/night/ + gt/ (darkzurich), leftImg8bit_foggy/ + "
        f"gtFine/ (foggy) or images/10k/ + labels/sem_seg/masks/ (bdd100k); see README 'Generalization'"
    )


def read_as(root: str | os.PathLike | None, given: str | None = None) -> str:
    """The layout a scoring or predicting command (`bench evaluate --gt`, `bench predict --dataset`, `bench
    run --dataset`) reads `root` as: `given` (checked), else the one layout it holds, else "cityscapes" (a
    gtFine-only root, a folder of plain images: the Cityscapes code path says what it lacks); a root that
    holds several layouts needs `--dataset-format`."""
    root = resolve_root(root)
    if given is not None:
        return detect_format(root, given)
    found = [name for name in FORMATS if _looks_like(root, name)]
    if len(found) > 1:
        return detect_format(root)  # the error naming the candidates
    return found[0] if found else "cityscapes"


def _looks_like(root: Path, name: str) -> bool:
    if name == "cityscapes":
        return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()
    if name == "foggy":
        return (root / "leftImg8bit_foggy").is_dir()
    if name == "acdc":
        return any((root / "rgb_anon" / c).is_dir() for c in ACDC_CONDITIONS)
    if name == "darkzurich":
        return (root / "rgb_anon" / "val" / "night").is_dir()
    return (root / "images" / "10k").is_dir() or (root / "labels" / "sem_seg").is_dir()


def list_frames(root: str | os.PathLike, fmt: str | None = None, split: str = "val") -> list[Frame]:
    """Every labelled frame of `split` in `root` (layout `fmt`, detected when None), sorted by condition
    then key; an image without its labels, or a folder that is not where the layout puts it, is an error
    naming the path expected."""
    root = resolve_root(root)
    fmt = detect_format(root, fmt)
    frames = _LISTERS[fmt](root, split)
    for frame in frames:
        check_image(frame.image)
    return sorted(frames, key=lambda f: (f.condition, f.key))


def with_unique_keys(frames: list[Frame]) -> list[Frame]:
    """`frames`, refused where two share a key: their predictions (`{key}_leftImg8bit.png`, what `bench
    predict` writes and `bench evaluate` matches) would be one file."""
    seen: dict[str, Frame] = {}
    for frame in frames:
        if frame.key in seen:
            raise DatasetError(
                f"{seen[frame.key].image} and {frame.image} are both frame {frame.key}: their predictions "
                f"would share one file; keep one of them (or score them apart with `bench generalize`)"
            )
        seen[frame.key] = frame
    return frames


def conditions(frames: Iterable[Frame]) -> list[str]:
    """The conditions of `frames`, each once, in order."""
    return sorted({f.condition for f in frames})


def _cityscapes(root: Path, split: str) -> list[Frame]:
    _need(root / "leftImg8bit" / split, "cityscapes", "the *_leftImg8bit.png frames")
    return [
        Frame(s.key, ALL, s.image, s.label_ids, "label", s.instance_ids)
        for s in list_samples(root, split, require_images=True)
    ]


def _foggy(root: Path, split: str) -> list[Frame]:
    image_dir = _need(root / "leftImg8bit_foggy" / split, "foggy", "the Foggy Cityscapes images")
    if not (root / "gtFine" / split).is_dir():
        raise DatasetError(
            f"{root} has no gtFine/{split}/: Foggy Cityscapes is scored against Cityscapes' own labels; "
            f"unpack gtFine_trainvaltest.zip into {root} (expected {root / 'gtFine' / split})"
        )
    samples = {s.key: s for s in list_samples(root, split)}
    frames = []
    for path in _glob(image_dir, "*/*_leftImg8bit_foggy_beta_*.png"):
        stem, _, beta = path.name[: -len(".png")].partition("_leftImg8bit_foggy_beta_")
        if beta not in FOG_BETAS:
            raise DatasetError(f"{path}: fog density beta {beta!r} is none of {', '.join(FOG_BETAS)}")
        sample = samples.get(stem)
        if sample is None or sample.label_ids.parent.name != path.parent.name:
            expected = root / "gtFine" / split / path.parent.name / f"{stem}_gtFine_labelIds.png"
            raise DatasetError(f"foggy image {path} has no ground truth: expected {expected}")
        key = f"{stem}_beta_{beta}"
        frames.append(Frame(key, f"beta_{beta}", path, sample.label_ids, "label", sample.instance_ids))
    return _nonempty(frames, image_dir, "*/*_leftImg8bit_foggy_beta_{0.005,0.01,0.02}.png")


def _acdc(root: Path, split: str) -> list[Frame]:
    _need(root / "rgb_anon", "acdc", "the ACDC images (rgb_anon_trainvaltest.zip)")
    present = [c for c in ACDC_CONDITIONS if (root / "rgb_anon" / c / split).is_dir()]
    if not present:
        raise DatasetError(
            f"no ACDC split '{split}' under {root / 'rgb_anon'}: expected "
            f"{root / 'rgb_anon' / '<fog|night|rain|snow>' / split / '<sequence>'}/*_rgb_anon.png"
        )
    frames = []
    for condition in present:
        frames += _anon_pairs(root, Path(condition) / split, condition)
    return frames


def _darkzurich(root: Path, split: str) -> list[Frame]:
    if split != "val":
        raise DatasetError(f"Dark Zurich has ground truth for its val split only, not {split!r}: use val")
    return _anon_pairs(root, Path("val") / "night", "night")


def _anon_pairs(root: Path, sub: Path, condition: str) -> list[Frame]:
    """ACDC and Dark Zurich: rgb_anon/{sub}/{sequence}/{stem}_rgb_anon.png with gt/{sub}/{sequence}/
    {stem}_gt_labelTrainIds.png and, where shipped, {stem}_gt_invIds.png."""
    image_dir = _need(root / "rgb_anon" / sub, "images", "the *_rgb_anon.png frames")
    gt_dir = root / "gt" / sub
    if not gt_dir.is_dir():
        raise DatasetError(
            f"no ground truth for {image_dir}: expected {gt_dir}/<sequence>/*_gt_labelTrainIds.png "
            f"(unpack the gt archive into {root}, so that gt/ sits beside rgb_anon/)"
        )
    frames = []
    for path in _glob(image_dir, "*/*_rgb_anon.png"):
        stem = path.name[: -len("_rgb_anon.png")]
        labels = gt_dir / path.parent.name / f"{stem}_gt_labelTrainIds.png"
        if not labels.is_file():
            raise DatasetError(f"image {path} has no ground truth: expected {labels}")
        invalid = labels.with_name(f"{stem}_gt_invIds.png")
        frames.append(
            Frame(stem, condition, path, labels, "train", invalid=invalid if invalid.is_file() else None)
        )
    return _nonempty(frames, image_dir, "<sequence>/*_rgb_anon.png")


def _bdd100k(root: Path, split: str) -> list[Frame]:
    image_dir = _need(root / "images" / "10k" / split, "bdd100k", "the 10K images (bdd100k_images_10k.zip)")
    mask_dir = root / "labels" / "sem_seg" / "masks" / split
    if not mask_dir.is_dir():
        raise DatasetError(
            f"no BDD100K semantic masks for split '{split}': expected {mask_dir}/*.png "
            f"(bdd100k_sem_seg_labels_trainval.zip; the test split has no public labels)"
        )
    frames = []
    for path in _glob(image_dir, "*.jpg"):
        labels = mask_dir / f"{path.stem}.png"
        if not labels.is_file():
            raise DatasetError(f"image {path} has no ground truth: expected {labels}")
        frames.append(Frame(path.stem, ALL, path, labels, "train"))
    return _nonempty(frames, image_dir, "*.jpg")


def _need(folder: Path, what: str, holds: str) -> Path:
    if not folder.is_dir():
        parent = next((p for p in folder.parents if p.is_dir()), folder)
        there = sorted(p.name for p in parent.iterdir() if p.is_dir())[:8] if parent.is_dir() else []
        raise DatasetError(
            f"expected {folder} ({holds}, {what}) but it is not there"
            + (f"; {parent} holds {', '.join(there) or 'no folders'}" if parent != folder else "")
            + ": move the folder there or point --dataset at the folder above it"
        )
    return folder


def _nonempty(frames: list[Frame], folder: Path, pattern: str) -> list[Frame]:
    if not frames:
        raise DatasetError(f"no frames under {folder}: expected {folder}/{pattern}")
    return frames


def _glob(folder: Path, pattern: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(os.path.join(glob.escape(str(folder)), pattern)))


_LISTERS = {
    "cityscapes": _cityscapes,
    "acdc": _acdc,
    "darkzurich": _darkzurich,
    "foggy": _foggy,
    "bdd100k": _bdd100k,
}
