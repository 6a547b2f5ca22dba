"""Predict every image of a split into a submission zip: one single-channel label-ID PNG per image.

Entries are `{city}_{seq}_{frame}_leftImg8bit.png` at the top of the archive, full resolution, 8-bit label
IDs, written as they are predicted (no folder of PNGs in between); PNGs are stored, not deflated again. The
archive is written under a temporary name and renamed when complete (`bench.atomic.replacing`), so a crash
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

from bench.atomic import replacing
from data.errors import UserError
from models.precision import DEFAULT_PRECISION


def entry_name(key: str) -> str:
    """The archive name of frame `key`, the stem `bench predict` writes too."""
    return f"{key}_leftImg8bit.png"


def write_submission(
    checkpoint,
    dataset: str | os.PathLike | None,
    split: str,
    out: str | os.PathLike,
    *,
    mode: str = "whole",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crop: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    precision: str = DEFAULT_PRECISION,
    fold_bn: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every image of `split` into the zip `out`; return the prediction figures of the run."""
    from bench.engine.predict import png_bytes, predict_samples
    from data.cityscapes import list_images
    from data.labels import to_label_ids

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise UserError(f"--out {out} must name a .zip file, e.g. submission.zip")
    frames = list_images(dataset, split)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:

        def add(sample, train_ids: np.ndarray, _logits: np.ndarray) -> None:
            archive.writestr(entry_name(sample.key), png_bytes(to_label_ids(train_ids)))

        stats = predict_samples(
            checkpoint,
            frames,
            add,
            mode=mode,
            scales=scales,
            flip=flip,
            crop=crop,
            stride=stride,
            progress=progress,
            fold_bn=fold_bn,
            precision=precision,
        )
    return {**stats, "split": split, "out": str(out)}
