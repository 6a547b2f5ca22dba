"""Which dataset a command runs on: the one given, else `$CITYSCAPES_DATASET`, else the embedded synthetic set
(generated once), named as result rows name it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.common.paths import SYNTHETIC_ROOT


@dataclass(frozen=True)
class Dataset:
    root: Path
    name: str
    kind: str  # "synthetic" | "real"


def resolve_dataset(dataset: str | None, *, progress: bool = True) -> Dataset:
    """The dataset to benchmark: the argument, else `$CITYSCAPES_DATASET`, else the synthetic set."""
    from data import synthetic

    dataset = dataset or os.environ.get("CITYSCAPES_DATASET") or None
    if dataset:
        from data.cityscapes import resolve_root

        root = resolve_root(dataset)
    else:
        root = SYNTHETIC_ROOT
        print(f"dataset: embedded synthetic set at {root} (set CITYSCAPES_DATASET for real data)")
        from bench.common.progress import is_terminal

        synthetic.generate(root, progress=progress and is_terminal())  # no bar in a log
    manifest = synthetic.read_manifest(root)
    if manifest is None:
        return Dataset(root, "cityscapes", "real")
    h, w = manifest["size"]
    return Dataset(root, f"synthetic-v{manifest['version']}-{h}x{w}", "synthetic")
