"""The generalization sweep: every (dataset, condition) unit predicted and scored, resumably.

A unit is one condition of one dataset (ACDC fog, Foggy Cityscapes beta 0.01, BDD100K all, ...) over all
its frames. Like the robustness sweep (bench/robustness/state.py) a unit is computed whole, frames in
order, and its exact sums (integer confusion matrices, instance sums as float reprs) are written atomically
to OUT/units/{dataset}-{condition}.json when it ends: a killed sweep resumes with the numbers of an
uninterrupted one, and OUT/manifest.json (checkpoint hash, datasets, frame keys, inference settings)
refuses a folder of other settings. Each frame is decoded once (a JPEG too), predicted once and scored
twice where it has an invalid mask (all pixels, and valid pixels only) from the same arrays; no frame is
written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import atomic
from bench.evaluation.accumulator import Accumulator
from data.errors import UserError
from data.layouts import FORMATS, Frame, list_frames

PROTOCOL = "generalize-v1"
"""Cityscapes-trained model, each dataset's labelled split scored per condition with the exact evaluator."""


@dataclass(frozen=True, order=True)
class Unit:
    dataset: str
    condition: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.condition}"


@dataclass
class UnitSums:
    """A unit's sums: all labelled pixels, and valid pixels only where the frames have invalid masks."""

    all: Accumulator
    valid: Accumulator | None
    has_instances: bool


def parse_datasets(text: str) -> dict[str, str]:
    """`cityscapes=ROOT,acdc=ROOT,...` -> {name: root}; names are the layouts of data/layouts.py."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, root = part.partition("=")
        name = name.strip().lower()
        if not sep or not root.strip():
            raise UserError(f"--datasets entry {part!r} is not NAME=ROOT (e.g. acdc=~/data/acdc)")
        if name not in FORMATS:
            raise UserError(f"--datasets: {name!r} is none of {', '.join(FORMATS)}")
        if name in out:
            raise UserError(f"--datasets names {name} twice: give each dataset once")
        out[name] = os.path.expanduser(root.strip())
    if not out:
        raise UserError("--datasets is empty: give NAME=ROOT pairs, e.g. cityscapes=~/data/cityscapes")
    return out


def plan(datasets: dict[str, str], split: str, limit: int | None) -> dict[Unit, list[Frame]]:
    """{unit: its frames} for every dataset (the first `limit` frames of each condition)."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit} must be at least 1")
    units: dict[Unit, list[Frame]] = {}
    for name, root in datasets.items():
        for frame in list_frames(root, name, "val" if name == "darkzurich" else split):
            units.setdefault(Unit(name, frame.condition), []).append(frame)
    return {u: frames[:limit] for u, frames in sorted(units.items())}


def manifest(checkpoint_sha256: str, units: dict[Unit, list[Frame]], settings: dict) -> dict[str, Any]:
    return {
        "protocol": PROTOCOL,
        "checkpoint_sha256": checkpoint_sha256,
        "units": {u.name: [f.key for f in frames] for u, frames in units.items()},
        "settings": settings,
    }


def digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Folder:
    """OUT/manifest.json and OUT/units/{unit}.json, each written whole."""

    def __init__(self, out: str | os.PathLike, manifest_: dict[str, Any]):
        self.out = Path(out)
        self.manifest = json.loads(json.dumps(manifest_))
        self.digest = digest(self.manifest)

    def open(self) -> Folder:
        atomic.check_writable(self.out, "--out", folder=True)
        path = self.out / "manifest.json"
        if path.is_file():
            if _read(path) != self.manifest:
                raise UserError(
                    f"--out {self.out} holds a generalization sweep of other settings (checkpoint, datasets, "
                    f"frames or inference options differ): rerun with the settings of {path}, or choose a "
                    f"new --out"
                )
        elif self.out.is_dir() and any(self.out.iterdir()):
            raise UserError(f"--out {self.out} already holds files but no manifest.json: choose a new folder")
        else:
            atomic.write_text(path, json.dumps(self.manifest, indent=1) + "\n")
        (self.out / "units").mkdir(exist_ok=True)
        return self

    def path(self, unit: Unit) -> Path:
        return self.out / "units" / f"{unit.name}.json"

    def is_done(self, unit: Unit) -> bool:
        return self.path(unit).is_file()

    def save(self, unit: Unit, sums: UnitSums, seconds: float) -> None:
        data = {
            "manifest_sha256": self.digest,
            "unit": unit.name,
            "has_instances": sums.has_instances,
            "all": sums.all.to_sums(),
            "valid": sums.valid.to_sums() if sums.valid is not None else None,
            "seconds": round(seconds, 3),
        }
        atomic.write_text(self.path(unit), json.dumps(data) + "\n")

    def load(self, unit: Unit) -> UnitSums:
        path = self.path(unit)
        data = _read(path)
        try:
            if data["manifest_sha256"] != self.digest or data["unit"] != unit.name:
                raise ValueError("it belongs to another sweep or unit")
            valid = (
                Accumulator.from_sums(data["valid"], pred_ids="train") if data["valid"] is not None else None
            )
            return UnitSums(
                Accumulator.from_sums(data["all"], pred_ids="train"), valid, bool(data["has_instances"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"{path} is not a finished unit of this sweep ({exc}): delete it to recompute it"
            ) from None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({exc}): delete it to start that part again") from None


def decode_frame(path: Path) -> np.ndarray:
    """The (H, W, 3) uint8 RGB pixels of a PNG or JPEG frame, as the robustness sweep decodes them."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise UserError(f"cannot decode image {path} ({exc}): restore the file") from None


def score_unit(predict, frames: Sequence[Frame], progress=None) -> UnitSums:
    """A unit's sums: each frame decoded once, `predict(rgb)` -> train IDs once, scored from the arrays."""
    from bench.evaluation.train_ids import read_ground_truth, score_frame

    with_masks = bool(frames) and all(f.invalid is not None for f in frames)
    sums = UnitSums(
        Accumulator(pred_ids="train"), Accumulator(pred_ids="train") if with_masks else None, True
    )
    sums.has_instances = all(f.instances is not None for f in frames)
    for frame in frames:
        prediction = predict(decode_frame(frame.image))
        gt = read_ground_truth(
            frame.labels, frame.encoding, frame.instances, frame.invalid if with_masks else None
        )
        name = f"prediction of {frame.image}"
        sums.all.add(score_frame(gt, prediction, name=name))
        if sums.valid is not None:
            sums.valid.add(score_frame(gt, prediction, valid_only=True, name=name))
        if progress is not None:
            progress.update(1)
    return sums


def run(predict, units: dict[Unit, list[Frame]], folder: Folder, progress=None) -> int:
    """Compute every unit not yet in `folder`; the number computed."""
    import time

    done = 0
    for unit, frames in units.items():
        if folder.is_done(unit):
            if progress is not None:
                progress.update(len(frames))
            continue
        began = time.perf_counter()
        folder.save(unit, score_unit(predict, frames, progress), time.perf_counter() - began)
        done += 1
    return done


def combined(parts: Sequence[UnitSums]) -> UnitSums:
    """The sums of several units as one (ACDC over its four conditions): confusions add exactly."""
    total = Accumulator(pred_ids="train")
    valid = Accumulator(pred_ids="train") if all(p.valid is not None for p in parts) else None
    for part in parts:
        total.confusion += part.all.confusion
        total.n_images += part.all.n_images
        if valid is not None:
            valid.confusion += part.valid.confusion
            valid.n_images += part.valid.n_images
    return UnitSums(total, valid, False)
