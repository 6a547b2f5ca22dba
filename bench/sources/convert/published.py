"""Published checkpoints: which file is which, and which reference row it should reproduce.

The facts live in the reference tables (results/reference/*.csv): a row with a `checkpoint_url` names the
weights that scored it, its `config`, and under `test_mode` the protocol ("whole" single-scale,
"multiscale+flip"). A checkpoint is recognised by its content or by its published file name. The 8 hex
digits that OpenMMLab's `publish_model` appends to a file name are the start of a SHA-256: of the published
file in the 2020 releases' script (so a renamed file is still recognised), of its unstripped input in
mmseg 1.x's; the file name is the fallback. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common.paths import REFERENCE_DIR
from data.errors import UserError
from data.files import check_file
from models.inference_modes import DEFAULT_SCALES

_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8})\.pth$")
# mmseg's tta img_ratios (configs/_base_/datasets) are PSPNet's six scales, our multiscale default
MULTISCALE_SCALES = DEFAULT_SCALES


@dataclass(frozen=True)
class Published:
    """One published checkpoint and the reference rows (by test mode) it scored."""

    file_name: str
    url: str
    config: str
    method: str
    references: dict[str, str] = field(default_factory=dict)  # test_mode -> reference row id
    miou: dict[str, float] = field(default_factory=dict)  # test_mode -> published mIoU

    @property
    def sha256_prefix(self) -> str | None:
        match = _HASH_SUFFIX.search(self.file_name)
        return match[1] if match else None


def sha256(path: str | os.PathLike, what: str = "checkpoint") -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints are hundreds of MB); a path that is no readable
    regular file is a UserError naming `what` and the kind (never a PermissionError or a hang)."""
    check_file(path, what, allow_empty=True)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _text(value: Any) -> str:
    """A table cell as text: '' for empty and for the NaN that tables without the column get."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def checkpoints(reference_dir: str | os.PathLike = REFERENCE_DIR) -> list[Published]:
    """Every checkpoint named by a reference row, with its rows grouped by test mode."""
    from bench.report import references

    frame = references.load_all(reference_dir)
    if "checkpoint_url" not in frame.columns:
        return []
    found: dict[str, Published] = {}
    for row in frame.to_dict("records"):
        url = _text(row.get("checkpoint_url"))
        if not url:
            continue
        name = url.rsplit("/", 1)[-1]
        entry = found.setdefault(name, Published(name, url, _text(row.get("config")), _text(row["method"])))
        mode = _text(row.get("test_mode")) or "whole"
        if _text(row.get("id")):
            entry.references[mode] = _text(row["id"])
        entry.miou[mode] = float(row["miou"])
    return list(found.values())


def recognise(
    file_name: str, digest: str, reference_dir: str | os.PathLike = REFERENCE_DIR
) -> Published | None:
    """The published checkpoint whose hash suffix starts `digest` (SHA-256 hex of the file), else the one
    with this file name, else None."""
    entries = checkpoints(reference_dir)
    for entry in entries:
        if entry.sha256_prefix and digest.startswith(entry.sha256_prefix):
            return entry
    for entry in entries:
        if Path(file_name).name == entry.file_name:
            return entry
    return None


def test_mode(mode: str, flip: bool, scales: Sequence[float]) -> str | None:
    """The published protocol a prediction setting reproduces: "whole", "multiscale+flip" or None."""
    if mode == "whole" and not flip:
        return "whole"
    if mode == "multiscale" and flip and tuple(float(s) for s in scales) == MULTISCALE_SCALES:
        return "multiscale+flip"
    return None


def reference_for(
    metadata: Mapping[str, Any],
    *,
    mode: str,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    reference_dir: str | os.PathLike = REFERENCE_DIR,
) -> tuple[Published, str] | None:
    """(published checkpoint, reference row id) for a converted checkpoint's metadata under this protocol."""
    source = metadata.get("source")
    if not isinstance(source, Mapping) or not source.get("sha256"):
        return None
    entry = recognise(str(source.get("file", "")), str(source["sha256"]), reference_dir)
    wanted = test_mode(mode, flip, scales)
    if entry is None or wanted is None or wanted not in entry.references:
        return None
    return entry, entry.references[wanted]
