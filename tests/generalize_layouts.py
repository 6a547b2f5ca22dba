"""Writes one frame in the exact layout of each generalization dataset (names, folders, label encodings), as
the archives unpack (data/layouts.py cites where each layout comes from): the tests' fixtures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from data.labels import to_train_ids

ACDC_STEM = ("GOPR0475", "GOPR0475_frame_000041")
DARK_STEM = ("GOPR0356", "GOPR0356_frame_000321")
BDD_NAME = "7d06fefd-f7be05a6"


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def decode_jpeg(data: bytes) -> np.ndarray:
    """The frame a JPEG decodes to: what the PNG layouts store, so all of them hold the same pixels."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def write(
    fmt: str,
    root: Path,
    key: str,
    rgb: np.ndarray,
    label_ids: np.ndarray,
    instance_ids: np.ndarray,
    *,
    condition: str = "fog",
    invalid: np.ndarray | None = None,
    split: str = "val",
    jpeg: bytes | None = None,
) -> Path:
    """`root` holding the frame in layout `fmt` (BDD100K: the bytes `jpeg` where given); returns `root`."""
    city = key.split("_")[0]
    if fmt in ("cityscapes", "foggy"):
        gt = root / "gtFine" / split / city
        _png(gt / f"{key}_gtFine_labelIds.png", label_ids)
        _png(gt / f"{key}_gtFine_instanceIds.png", instance_ids)
        if fmt == "cityscapes":
            _png(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", rgb)
        else:
            for beta in ("0.005", "0.01", "0.02"):
                name = f"{key}_leftImg8bit_foggy_beta_{beta}.png"
                _png(root / "leftImg8bit_foggy" / split / city / name, rgb)
    elif fmt in ("acdc", "darkzurich"):
        seq, stem = ACDC_STEM if fmt == "acdc" else DARK_STEM
        sub = Path(condition) / split if fmt == "acdc" else Path(split) / "night"
        _png(root / "rgb_anon" / sub / seq / f"{stem}_rgb_anon.png", rgb)
        gt = root / "gt" / sub / seq
        _png(gt / f"{stem}_gt_labelTrainIds.png", to_train_ids(label_ids))
        if invalid is not None:
            _png(gt / f"{stem}_gt_invIds.png", invalid.astype(np.uint8))
    elif fmt == "bdd100k":
        image = root / "images" / "10k" / split / f"{BDD_NAME}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(jpeg if jpeg is not None else jpeg_bytes(rgb))
        _png(root / "labels" / "sem_seg" / "masks" / split / f"{BDD_NAME}.png", to_train_ids(label_ids))
    else:
        raise ValueError(fmt)
    return root
