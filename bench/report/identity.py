"""What a result row measured: the dataset's identity, so a 1-frame sample never reads as a Cityscapes score.

Every row carries the dataset's name, the split, the number of frames (`n_images`), their resolution
(`frame_size`, HxW, "mixed" when they differ), a short content hash of the frame list (`frames_hash`: the
sorted frame keys, so two rows on the same frames have the same hash) and its `scope`:
- `full`: every frame of a split of real Cityscapes (its published frame count, at 1024x2048), or of the
  embedded synthetic set (`data.synthetic` with its defaults);
- `partial`: anything else (a sample, `--limit`, a generated set of another size, a folder of images).
Only `full` rows reach the README's results section; every row stays in results.csv, marked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

CITYSCAPES_FRAMES = {"train": 2975, "val": 500, "test": 1525}
"""Frames per split of Cityscapes fine (the dataset's README: 2975 / 500 / 1525)."""
CITYSCAPES_SIZE = (1024, 2048)
IDENTITY_COLUMNS = ("row", "scope", "frame_size", "frames_hash", "tags")
"""`row`: the row's name (`bench results`, `bench evaluate --row`); `tags`: `;`-separated labels."""
SCOPES = ("full", "partial")


def frames_hash(keys: Sequence[str]) -> str:
    """10 hex digits of SHA-256 over the sorted frame keys, one a line."""
    return hashlib.sha256("".join(f"{k}\n" for k in sorted(keys)).encode()).hexdigest()[:10]


def frame_size(paths: Sequence[Path]) -> str:
    """`HxW` of the files (header only), "mixed" when they differ, "" when there are none."""
    from PIL import Image

    sizes = set()
    for path in paths:
        with Image.open(path) as image:
            sizes.add((image.height, image.width))
    if len(sizes) != 1:
        return "mixed" if sizes else ""
    (h, w), *_ = sizes
    return f"{h}x{w}"


def dataset_identity(
    name: str, kind: str, root: Path | None, split: str, samples: Sequence
) -> dict[str, str]:
    """The row columns naming what was scored: `dataset` (renamed when a Cityscapes-layout folder is not the
    whole split: `cityscapes-layout:{folder}`), `frame_size`, `frames_hash` and `scope`."""
    from data.synthetic import dataset as synthetic

    size = frame_size([s.label_ids for s in samples])
    n = len(samples)
    if kind == "synthetic":
        manifest = (synthetic.read_manifest(Path(root)) if root is not None else None) or {}
        defaults = dict(
            zip(synthetic.SPLITS, (synthetic.DEFAULT_TRAIN, synthetic.DEFAULT_VAL, 0), strict=True)
        )
        full = (
            tuple(manifest.get("size", ())) == tuple(synthetic.DEFAULT_SIZE)
            and manifest.get("seed") == 0
            and manifest.get("splits") == defaults
            and n == defaults.get(split)
        )
    else:
        full = n == CITYSCAPES_FRAMES.get(split) and size == "x".join(map(str, CITYSCAPES_SIZE))
        if not full and root is not None:
            name = f"cityscapes-layout:{Path(root).resolve().name}"
    return {
        "dataset": name,
        "frame_size": size,
        "frames_hash": frames_hash([s.key for s in samples]),
        "scope": "full" if full else "partial",
    }
