"""The embedded synthetic dataset: street scenes in the exact Cityscapes layout and file formats.

    python -m data.synthetic --out data/generated/synthetic [--train 100 --val 25 --size 256x512 --seed 0]

Each frame is laid out as labelled polygons drawn back to front (`data.synthetic.scene`), written as
`gtFine_polygons.json`, rasterised to `gtFine_labelIds.png` / `gtFine_instanceIds.png` by cityscapesScripts'
own `createLabelImage` / `createInstanceImage` (so GT and polygons agree exactly, as in the real dataset),
and rendered to `leftImg8bit.png` from the same polygons (`data.synthetic.render`). A frame depends only on
(seed, split, index), so frames are independent and generated in parallel without changing a byte.

Every frame holds all 11 stuff classes and the common void labels; the first frame of each split also
holds all 8 instance classes and every rare ignored label, so each split covers all 19 evaluated classes.
The dataset is built in a temporary sibling folder and renamed into place at the end, with a manifest
(`synthetic.json`) that records the parameters: same parameters again is a no-op.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from data.errors import UserError
from data.labels import CLASS_NAMES, INSTANCE_CLASS_NAMES, name2label
from data.sizes import size_argument
from data.synthetic.render import render
from data.synthetic.scene import SHOWCASE_LABELS, VOID_LABELS, SceneObject, closeup, layout

VERSION = 1
"""Bump when the generator's output changes, so existing datasets are regenerated."""
MANIFEST = "synthetic.json"
SPLITS = ("train", "val", "test")
CITIES = {
    "train": (
        "aachen",
        "bochum",
        "bremen",
        "cologne",
        "darmstadt",
        "dusseldorf",
        "erfurt",
        "hamburg",
        "hanover",
        "jena",
        "krefeld",
        "monchengladbach",
        "strasbourg",
        "stuttgart",
        "tubingen",
        "ulm",
        "weimar",
        "zurich",
    ),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich"),
}
DEFAULT_SIZE = (256, 512)
DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_TEST = 100, 25, 0
MIN_SIZE = (32, 64)
_PNG = {"compress_level": 1, "optimize": False}  # fixed settings: same pixels -> same bytes


def frame_name(split: str, index: int) -> tuple[str, str]:
    """(city, `{city}_{seq:06d}_{frame:06d}`) of the index-th frame of a split, in the Cityscapes pattern
    (one annotated frame, number 19, per 30-frame snippet; snippets numbered per city)."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_000019"


def _clip(poly: Sequence[tuple[float, float]], w: int, h: int) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a polygon to the image rectangle [0, w-1] x [0, h-1]."""
    edges = ((0, 0.0, 1), (0, w - 1.0, -1), (1, 0.0, 1), (1, h - 1.0, -1))  # axis, bound, inside sign
    pts = list(poly)
    for axis, bound, sign in edges:
        if not pts:
            break
        out = []
        for k, cur in enumerate(pts):
            prev = pts[k - 1]
            cur_in, prev_in = sign * (cur[axis] - bound) >= 0, sign * (prev[axis] - bound) >= 0
            if cur_in != prev_in:
                f = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + f * (cur[0] - prev[0]), prev[1] + f * (cur[1] - prev[1])))
            if cur_in:
                out.append(cur)
        pts = out
    return pts


def _integer_polygon(poly: Sequence[tuple[float, float]], w: int, h: int) -> list[list[int]]:
    """Clipped, rounded polygon without repeated vertices; empty if nothing of it is inside the image."""
    out: list[list[int]] = []
    for x, y in _clip(poly, w, h):
        p = [int(round(x)), int(round(y))]
        if not out or p != out[-1]:
            out.append(p)
    if len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out if len(out) >= 3 else []


def _annotation(objects: list[SceneObject], h: int, w: int) -> tuple[list[SceneObject], dict]:
    kept, entries = [], []
    for obj in objects:
        poly = _integer_polygon(obj.polygon, w, h)
        if poly:
            kept.append(obj)
            entries.append({"label": obj.label, "polygon": poly})
    return kept, {"imgHeight": h, "imgWidth": w, "objects": entries}


def _required(showcase: bool) -> set[str]:
    """Labels a frame must show in its labelIds: the stuff classes and common void labels always; in a
    showcase frame also the instance classes and the rare labels that labelIds can hold (license plate
    has id -1 and the groups are drawn as their class, so those are only guaranteed in the polygons)."""
    stuff = {name for name in CLASS_NAMES if name not in INSTANCE_CLASS_NAMES}
    if not showcase:
        return stuff | set(VOID_LABELS)
    rare = {n for n in SHOWCASE_LABELS if n in name2label and name2label[n].id >= 0}
    return set(CLASS_NAMES) | set(VOID_LABELS) | rare


def _cityscapes_annotation(doc: dict) -> Annotation:
    ann = Annotation()
    ann.fromJsonText(json.dumps(doc))
    return ann


def build_frame(
    seed: int, split: str, index: int, size: tuple[int, int], *, image: bool = True
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray | None]:
    """(polygons document, labelIds uint8, instanceIds uint16, RGB uint8) of one frame; the RGB image is
    None with `image=False` (ground truth alone, e.g. for the evaluator benchmark)."""
    h, w = size
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    layout_rng, render_rng = rng.spawn(2)
    showcase = index == 0
    objects = layout(layout_rng, h, w, showcase=showcase)
    required = _required(showcase)
    for attempt in range(4):
        objects, doc = _annotation(objects, h, w)
        ann = _cityscapes_annotation(doc)
        label_ids = np.asarray(createLabelImage(ann, "ids"), dtype=np.uint8)
        present = {lb.name for lb in (name2label[n] for n in required) if (label_ids == lb.id).any()}
        missing = sorted(required - present)
        if not missing:
            break
        # A required label was hidden (tiny images, heavy occlusion): show a block of it in front,
        # below the borders and the ego vehicle that the layout puts last.
        front = [closeup(name, k, len(missing), attempt, h, w) for k, name in enumerate(missing)]
        tail = sum(1 for o in objects if o.label in ("ego vehicle", "out of roi", "rectification border"))
        objects = objects[: len(objects) - tail] + front + objects[len(objects) - tail :]
    else:
        raise RuntimeError(f"frame {split}/{index}: labels {missing} could not be placed")
    instance_ids = np.asarray(createInstanceImage(ann, "ids"), dtype=np.int64).astype(np.uint16)
    if not image:
        return doc, label_ids, instance_ids, None
    rgb = render(render_rng, objects, [[tuple(p) for p in o["polygon"]] for o in doc["objects"]], h, w)
    return doc, label_ids, instance_ids, rgb


def _write_frame(job: tuple[Path, int, str, int, tuple[int, int]]) -> str:
    root, seed, split, index, size = job
    doc, label_ids, instance_ids, rgb = build_frame(seed, split, index, size)
    city, stem = frame_name(split, index)
    gt_dir, img_dir = root / "gtFine" / split / city, root / "leftImg8bit" / split / city
    gt_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    (gt_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps(doc, indent=4) + "\n")
    Image.fromarray(label_ids, mode="L").save(gt_dir / f"{stem}_gtFine_labelIds.png", **_PNG)
    Image.fromarray(instance_ids).save(gt_dir / f"{stem}_gtFine_instanceIds.png", **_PNG)  # mode I;16
    Image.fromarray(rgb, mode="RGB").save(img_dir / f"{stem}_leftImg8bit.png", **_PNG)
    return stem


def _manifest(train: int, val: int, test: int, size: tuple[int, int], seed: int) -> dict:
    return {
        "generator": "cityscapes-bench data.synthetic",
        "version": VERSION,
        "seed": seed,
        "size": [size[0], size[1]],
        "splits": {"train": train, "val": val, "test": test},
    }


def read_manifest(root: Path) -> dict | None:
    """The manifest of a generated dataset (None for any other folder): how `bench run` labels its rows."""
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _check_args(train: int, val: int, test: int, size: tuple[int, int], seed: int) -> None:
    for name, n in (("train", train), ("val", val), ("test", test)):
        if not isinstance(n, int) or n < 0:
            raise UserError(f"--{name} must be a non-negative number of frames, got {n!r}")
    if train + val + test == 0:
        raise UserError("nothing to generate: give at least one frame (--train/--val/--test)")
    if len(size) != 2 or size[0] < MIN_SIZE[0] or size[1] < MIN_SIZE[1]:
        raise UserError(f"--size must be at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (HxW), got {size}")
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed!r}")


def generate(
    out: str | os.PathLike,
    *,
    train: int = DEFAULT_TRAIN,
    val: int = DEFAULT_VAL,
    test: int = DEFAULT_TEST,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
) -> Path:
    """Write a synthetic Cityscapes-layout dataset to `out` and return its path.

    A complete dataset with the same parameters is left untouched; one made with other parameters is
    replaced. A folder that is not a synthetic dataset is never overwritten (UserError). `workers`
    processes (default: the CPU count) generate frames in parallel; the bytes do not depend on it.
    """
    size = (int(size[0]), int(size[1]))
    _check_args(train, val, test, size, seed)
    out = Path(out)
    wanted = _manifest(train, val, test, size, seed)
    try:
        return _generate(out, wanted, (train, val, test), size, seed, progress, workers)
    except OSError as exc:  # a full disk, a read-only folder, a name too long: in a worker or here
        raise UserError(
            f"cannot write the dataset to {out}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
            + ": choose another --out"
        ) from None


def _generate(
    out: Path,
    wanted: dict,
    counts: tuple[int, int, int],
    size: tuple[int, int],
    seed: int,
    progress: bool,
    workers: int | None,
) -> Path:
    if read_manifest(out) == wanted:
        return out
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and read_manifest(out) is None)):
        raise UserError(
            f"{out} exists and is not a synthetic dataset (no {MANIFEST}): choose another --out or remove it"
        )
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"cannot write the dataset to {out}: {blocker} is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    # the name is cut so that the temporary sibling's name stays within the file-system limit
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:200]}.tmp-", dir=out.parent))
    try:
        jobs = [
            (tmp, seed, split, i, size) for split, n in zip(SPLITS, counts, strict=True) for i in range(n)
        ]
        _run(jobs, progress, workers)
        (tmp / MANIFEST).write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _run(jobs: list, progress: bool, workers: int | None) -> None:
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = tqdm(total=len(jobs), desc="synthetic frames", unit="frame", disable=not progress)
    with bar:
        if workers == 1 or len(jobs) < 4:
            for job in jobs:
                _write_frame(job)
                bar.update()
        else:
            # spawn, not fork: the caller may hold threads (TensorFlow) that a forked child would inherit
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for _ in pool.map(_write_frame, jobs, chunksize=2):
                    bar.update()


# ---------------------------------------------------------------- command line


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data.synthetic",
        description="Generate the embedded synthetic dataset in the Cityscapes layout. Running it again with "
        "the same parameters does nothing; other parameters replace the dataset.",
    )
    parser.add_argument("--out", required=True, type=Path, help="dataset root to write (created)")
    parser.add_argument(
        "--train", type=_count, metavar="N", default=DEFAULT_TRAIN, help="train frames (default %(default)s)"
    )
    parser.add_argument(
        "--val", type=_count, metavar="N", default=DEFAULT_VAL, help="val frames (default %(default)s)"
    )
    parser.add_argument(
        "--test", type=_count, metavar="N", default=DEFAULT_TEST, help="test frames (default %(default)s)"
    )
    parser.add_argument(
        "--size",
        type=size_argument,
        default=DEFAULT_SIZE,
        metavar="HxW",
        help=f"frame size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}, Cityscapes' 1:2)",
    )
    parser.add_argument(
        "--seed", type=_count, metavar="S", default=0, help="random seed (default %(default)s)"
    )
    parser.add_argument(
        "--workers", type=_count, metavar="N", default=None, help="processes (default: all CPUs)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        root = generate(
            args.out,
            train=args.train,
            val=args.val,
            test=args.test,
            size=args.size,
            seed=args.seed,
            progress=not args.quiet,
            workers=args.workers or None,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the half-made dataset lives in a temporary folder, already removed
        print("interrupted", file=sys.stderr)
        return 130
    print(root)
    return 0
