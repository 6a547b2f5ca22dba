"""Cityscapes-C corruptions (data/corruptions.py) against the reference package, without TensorFlow.

Fidelity is proven against `imagecorruptions` itself (the maintained fork `imagecorruptions-imaug`): our
frame is byte-equal to what the package makes when its random state is seeded as the protocol says, for every
corruption and severity, at the synthetic set's size and at Cityscapes' 1024x2048.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data.corruptions import (
    CORRUPTIONS,
    NOISE,
    check_corruption,
    corrupt,
    package_version,
    seed_for,
    seeded_global_rng,
    severities,
)
from data.errors import UserError

imagecorruptions = pytest.importorskip("imagecorruptions")

DETERMINISTIC = {"defocus_blur", "gaussian_blur", "brightness", "contrast", "saturate", "jpeg_compression"}
"""The corruptions that draw no random numbers: the seed cannot change them."""


def reference(image: np.ndarray, corruption: str, severity: int, seed: int) -> np.ndarray:
    """The package's output with numpy's global RNG seeded (and the seed argument where it takes one)."""
    kwargs = {"seed": seed} if corruption in ("glass_blur", "impulse_noise") else {}
    np.random.seed(seed)
    return imagecorruptions.corrupt(image, severity=severity, corruption_name=corruption, **kwargs)


@pytest.fixture(scope="module")
def frame(tiny_dataset) -> np.ndarray:
    """A 64x128 street frame of the synthetic set (structure, edges and flat areas, like a real one)."""
    path = next((tiny_dataset / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_protocol_has_16_corruptions_with_severities_1_to_5_and_1_to_3_for_noises():
    assert len(CORRUPTIONS) == len(set(CORRUPTIONS)) == 16
    assert set(CORRUPTIONS) <= set(imagecorruptions.get_corruption_names("all"))
    assert {c: severities(c) for c in NOISE} == {c: (1, 2, 3) for c in NOISE}
    assert all(severities(c) == (1, 2, 3, 4, 5) for c in CORRUPTIONS if c not in NOISE)
    assert check_corruption("jpeg") == "jpeg_compression"
    assert package_version() == "1.1.5"


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_every_severity_is_the_packages_output_for_the_same_seed(frame, corruption):
    for severity in severities(corruption):
        seed = seed_for("aachen_000000_000019", corruption, severity)
        ours = corrupt(frame, corruption, severity, seed)
        expected = reference(frame, corruption, severity, seed)
        assert ours.dtype == np.uint8 and ours.shape == frame.shape
        assert ours.tobytes() == expected.tobytes(), (corruption, severity)
        assert not np.array_equal(ours, frame), f"{corruption} {severity} left the frame as it was"
        other = corrupt(frame, corruption, severity, seed_for("aachen_000000_000020", corruption, severity))
        if corruption in DETERMINISTIC:
            assert np.array_equal(other, ours)
        else:  # another frame key draws other random numbers
            assert not np.array_equal(other, ours), (corruption, severity)


def test_a_call_restores_the_global_rng_and_does_not_depend_on_earlier_calls(frame):
    np.random.seed(1234)
    expected_draws = np.random.random(5)
    first = corrupt(frame, "shot_noise", 2, 7)
    np.random.seed(1234)
    corrupt(frame, "fog", 3, 99)
    corrupt(frame, "glass_blur", 1, 5)
    assert np.array_equal(np.random.random(5), expected_draws)  # the caller's stream is untouched
    assert np.array_equal(corrupt(frame, "shot_noise", 2, 7), first)
    with seeded_global_rng(3):
        inside = np.random.random()
    np.random.seed(3)
    assert inside == np.random.random()


def test_seeds_are_stable_across_processes_and_distinct_per_frame_corruption_and_severity():
    code = "from data.corruptions import seed_for; print(seed_for('frankfurt_000000_000294', 'fog', 3, 0))"
    printed = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": salt},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for salt in ("1", "2")
    }
    assert printed == {str(seed_for("frankfurt_000000_000294", "fog", 3, 0))}
    seeds = {
        seed_for(key, c, s, base)
        for key in ("a_1_1", "a_1_2")
        for c in CORRUPTIONS
        for s in severities(c)
        for base in (0, 1)
    }
    assert len(seeds) == 2 * 2 * sum(len(severities(c)) for c in CORRUPTIONS)
    assert all(0 <= s < 2**32 for s in seeds)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda f: corrupt(f, "zoom_blur", 1, 0), "unknown corruption 'zoom_blur'"),
        (lambda f: corrupt(f, "gaussian_noise", 4, 0), "severity 4 of gaussian_noise: choose from 1, 2, 3"),
        (lambda f: corrupt(f, "fog", 0, 0), "severity 0 of fog"),
        (lambda f: corrupt(f[:16], "fog", 1, 0), "at least 32x32 pixels, not 128x16"),
        (lambda f: corrupt(f[..., 0], "fog", 1, 0), "(H, W, 3) uint8 RGB"),
        (lambda f: corrupt(f.astype(np.float32), "fog", 1, 0), "(H, W, 3) uint8 RGB"),
    ],
)
def test_bad_requests_are_user_errors(frame, call, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(frame)


@pytest.mark.slow
def test_full_resolution_frames_work_for_every_corruption_and_match_the_package_where_sizes_matter():
    """1024x2048: frost crops a rescaled texture, fog a power-of-two plasma map, snow and spatter zoom and
    crop layers, motion blur shifts by the frame size: checked byte for byte at the worst severity."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1024, 0:2048]
    frame = np.stack([x * 255 // 2048, y * 255 // 1024, (x // 97 + y // 61) % 2 * 180], axis=-1)
    frame = np.clip(frame + rng.integers(0, 20, frame.shape), 0, 255).astype(np.uint8)
    for corruption in CORRUPTIONS:
        severity = max(severities(corruption))
        seed = seed_for("frankfurt_000000_000294", corruption, severity)
        ours = corrupt(frame, corruption, severity, seed)
        assert ours.shape == frame.shape and ours.dtype == np.uint8, corruption
        if corruption in ("frost", "fog", "snow", "spatter", "motion_blur"):
            assert ours.tobytes() == reference(frame, corruption, severity, seed).tobytes(), corruption
