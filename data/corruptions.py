"""Cityscapes-C corruptions: the reference package's functions, seeded per (frame, corruption, severity).

Cityscapes-C (Kamann & Rother, CVPR 2020; SegFormer's robustness table) is a protocol, not a download: the
ImageNet-C corruptions of Hendrycks & Dietterich applied to the val frames. The functions are those of the
`imagecorruptions` package, through its maintained fork `imagecorruptions-imaug` (same severity tables;
bethgelab's 1.1.2 breaks on numpy 2 and scikit-image >= 0.19 in gaussian/glass blur and fog). We never
re-implement a corruption: `corrupt` calls the package and only makes it deterministic.

Determinism: every call gets a seed derived from (frame key, corruption, severity, base seed) by SHA-256,
stable across processes and Python versions (not the salted `hash()`). Most corruptions draw from numpy's
global RNG: it is seeded for the call and restored afterwards, so a call neither depends on nor disturbs
anyone else's draws. glass blur (numba's own RNG) and impulse noise (scikit-image's generator) take the seed
as the package's `seed` argument. The global RNG is process-wide: make corrupted frames in worker
processes (bench/robustness does), not in threads. No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np

from data.errors import UserError

PACKAGE = "imagecorruptions-imaug"

BLUR = ("motion_blur", "defocus_blur", "glass_blur", "gaussian_blur")
NOISE = ("gaussian_noise", "impulse_noise", "shot_noise", "speckle_noise")
DIGITAL = ("brightness", "contrast", "saturate", "jpeg_compression")
WEATHER = ("snow", "spatter", "fog", "frost")
CORRUPTIONS: tuple[str, ...] = BLUR + NOISE + DIGITAL + WEATHER
"""The 16 corruptions of Cityscapes-C, named as the package names them, in the order tables list them."""

ALIASES = {"jpeg": "jpeg_compression"}
"""Short names the command line also accepts."""

CLEAN = "clean"
"""The uncorrupted frames (severity 0): the reference that rPC divides by."""

_SEEDED_BY_ARGUMENT = frozenset({"glass_blur", "impulse_noise"})


def severities(corruption: str) -> tuple[int, ...]:
    """Severities of a corruption in the protocol: 1-3 for the four noises (SegFormer), else 1-5."""
    check_corruption(corruption)
    return (1, 2, 3) if corruption in NOISE else (1, 2, 3, 4, 5)


def check_corruption(name: str) -> str:
    """The package name of a corruption (aliases resolved); a UserError listing the choices otherwise."""
    name = ALIASES.get(name, name)
    if name not in CORRUPTIONS:
        raise UserError(f"unknown corruption {name!r}: choose from {', '.join(CORRUPTIONS)} (or 'jpeg')")
    return name


def seed_for(key: str, corruption: str, severity: int, base: int = 0) -> int:
    """The 32-bit seed of one corrupted frame: SHA-256 of `key|corruption|severity|base` (stable anywhere)."""
    text = f"{key}|{corruption}|{int(severity)}|{int(base)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big")


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """numpy's global RNG seeded with `seed` inside the block, put back as it was afterwards."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def corrupt(image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """`image` (H, W, 3) uint8 RGB corrupted by the package's function at `severity`, drawing from `seed`.

    The package's own `imagecorruptions.corrupt` does the work (its checks, its uint8 conversion); the frame
    must be at least 32x32.
    """
    corruption = check_corruption(corruption)
    if severity not in severities(corruption):
        raise UserError(
            f"severity {severity} of {corruption}: choose from {', '.join(map(str, severities(corruption)))}"
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"a frame to corrupt must be (H, W, 3) uint8 RGB, not {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 32:
        raise UserError(
            f"a frame to corrupt must be at least 32x32 pixels, not {image.shape[1]}x{image.shape[0]}"
        )
    from imagecorruptions import corrupt as reference

    kwargs = {"seed": seed} if corruption in _SEEDED_BY_ARGUMENT else {}
    with seeded_global_rng(seed):
        return reference(image, severity=severity, corruption_name=corruption, **kwargs)


def package_version() -> str:
    """The installed version of the corruption package (recorded with every result)."""
    from importlib.metadata import version

    return version(PACKAGE)
