"""Predict every image of a split into a submission zip: one single-channel label-ID PNG per image.

Entries are `{city}_{seq}_{frame}_leftImg8bit.png` at the top of the archive, full resolution, 8-bit label
IDs, written as they are predicted (no folder of PNGs in between); PNGs are stored, not deflated again. The
archive is written under a temporary name and renamed when complete (`common.atomic.replacing`), so a crash
or Ctrl-C never leaves a half-written zip where the upload would pick it up. The finished zip is checked
with `check.check_submission` before the command reports success.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.atomic import check_writable, replacing
from data.errors import UserError
from models.inference_modes import DEFAULT_SETTINGS, InferenceSettings


def entry_name(key: str) -> str:
    """The archive name of frame `key`, the stem `bench predict` writes too."""
    return f"{key}_leftImg8bit.png"


def check_zip_name(out: str | os.PathLike) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out {out} must name a .zip file, e.g. submission.zip")
    return check_writable(out, "--out", folder=False)  # a folder, read-only or full: before the work


class ZipSink:
    """A sink of the prediction loop writing each frame's label-ID PNG into an open zip archive."""

    needs_logits = False

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.reset()

    def reset(self) -> None:
        self.written = 0

    def process(self, sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None:
        from bench.inference.sinks import png_bytes
        from data.labels import to_label_ids

        self.archive.writestr(entry_name(sample.key), png_bytes(to_label_ids(train_ids)))
        self.written += 1

    def evaluate(self) -> dict[str, int]:
        return {"zip_entries": self.written}


def write_submission(
    model,
    frames: Sequence,
    out: str | os.PathLike,
    settings: InferenceSettings = DEFAULT_SETTINGS,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every frame of `frames` (`data.cityscapes.list_images` of the split) with `model`
    (`open_checkpoint`'s) into the zip `out`; return the prediction figures of the run."""
    from bench.inference.loop import predict_frames

    out = check_zip_name(out)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        stats = predict_frames(model, frames, settings, [ZipSink(archive)], progress=progress).stats
    return {**stats, "out": str(out)}
