"""Inference modes on a model whose output is known: the identity network (logits = the input channels)
is equivariant to mirroring, scaling and cropping, so every mode must give back the frame itself."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from data.errors import UserError  # noqa: E402
from models.inference_modes import InferenceSettings, frame_logits  # noqa: E402


def identity(x):
    return tf.identity(x)


@pytest.fixture()
def frame():
    """A (1, 24, 40, 3) frame with no mirror symmetry: a horizontal ramp, a vertical one and noise."""
    rng = np.random.default_rng(0)
    h, w = 24, 40
    ramp_x = np.broadcast_to(np.linspace(-1, 1, w, dtype=np.float32), (h, w))
    ramp_y = np.broadcast_to(np.linspace(-1, 1, h, dtype=np.float32)[:, None], (h, w))
    image = np.stack([ramp_x, ramp_y, rng.normal(size=(h, w)).astype(np.float32)], axis=-1)
    return tf.constant(image[None])


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "whole", "flip": True},
        {"mode": "slide", "crop": (16, 16), "stride": (8, 12), "flip": True},
        {"mode": "multiscale", "scales": (1.0,), "flip": True},
    ],
)
def test_flipped_predictions_are_mirrored_back_before_they_are_averaged(frame, settings):
    logits = frame_logits(identity, frame, **settings)
    # averaging the mirrored pass without mirroring it back would give (x + x[:, ::-1]) / 2
    np.testing.assert_array_equal(logits, frame.numpy()[0])


def test_multiscale_resizes_the_logits_back_to_the_frame(frame):
    logits = frame_logits(identity, frame, mode="multiscale", scales=(0.5, 2.0), flip=True)
    assert logits.shape == frame.shape[1:]
    ramp = logits[..., 0]  # a linear ramp survives bilinear down- and up-sampling away from the borders
    np.testing.assert_allclose(ramp[:, 4:-4], frame.numpy()[0, :, 4:-4, 0], atol=0.03)
    assert np.all(np.diff(ramp[12, 4:-4]) > 0)


def test_inference_settings_check_their_values():
    assert InferenceSettings(scales=[1, 0.5]).scales == (1.0, 0.5)
    for bad, needle in (
        ({"mode": "tiled"}, "--mode tiled"),
        ({"scales": ()}, "--scales"),
        ({"scales": (float("nan"),)}, "--scales"),
        ({"crop": (0, 10)}, "--crop"),
        ({"precision": "fp8"}, "fp8"),
    ):
        with pytest.raises(UserError, match=needle):
            InferenceSettings(**bad)
