"""Matching prediction files to ground truth, as cityscapesScripts' getPrediction does."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

from data.cityscapes import Sample
from data.errors import UserError


def match_predictions(samples: Sequence[Sample], pred_dir: str | os.PathLike) -> list[Path]:
    """The prediction of each sample: the one PNG under pred_dir (recursive) named `{city}_{seq}_{frame}*`.

    This is cityscapesScripts' getPrediction (fnmatch `{city}_{seq}_{frame}*.png` over an `os.walk`), for
    any city name; every problem is found before any decoding, and all missing files are counted in one
    message.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        what = "is not a folder" if pred_dir.exists() else "does not exist"
        raise UserError(f"prediction folder {pred_dir} {what}: pass --pred DIR with the PNGs")
    wanted = {s.key for s in samples}
    lengths = {len(k) for k in wanted}
    found: dict[str, list[Path]] = {}
    for root, _dirs, files in os.walk(pred_dir, onerror=_unreadable):
        for name in files:
            for key in prediction_keys(name, wanted, lengths):
                found.setdefault(key, []).append(Path(root) / name)
    missing = [s for s in samples if s.key not in found]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(samples)} ground-truth images have no prediction, "
            f"e.g. {_gt_path(missing[0])}: expected a PNG named {missing[0].key}*.png "
            f"under {pred_dir}"
        )
    for s in samples:
        if len(found[s.key]) > 1:
            names = ", ".join(str(p) for p in sorted(found[s.key])[:3])
            raise UserError(
                f"ground truth {_gt_path(s)} has {len(found[s.key])} predictions ({names}): keep "
                f"exactly one PNG named {s.key}*.png under {pred_dir}"
            )
    return [found[s.key][0] for s in samples]


def _gt_path(sample) -> Path:
    """The labels file of a Cityscapes `Sample` or of a `data.layouts.Frame` (ACDC, BDD100K, ...)."""
    return sample.label_ids if isinstance(sample, Sample) else sample.labels


def prediction_keys(name: str, wanted: Collection[str], lengths: Collection[int] | None = None) -> list[str]:
    """The frame keys in `wanted` (a set) that the file name `name` matches as `{key}*.png`, getPrediction's
    fnmatch: usually none or one. `lengths`, the distinct lengths of the keys, saves recounting them."""
    if not name.endswith(".png"):
        return []
    lengths = sorted(lengths if lengths is not None else {len(k) for k in wanted})
    return [name[:n] for n in lengths if len(name) >= n + 4 and name[:n] in wanted]


def _unreadable(exc: OSError) -> None:
    """os.walk skips a folder it cannot list; its predictions would be reported missing: name it instead."""
    raise UserError(f"cannot read the prediction folder {exc.filename}: {exc.strerror}")
