"""The input recipe (data/normalization.py InputSpec): old checkpoints read as before, new recipes round-trip
and are applied as written: input size, resize (PIL's antialiased 8-bit one or a plain bilinear on floats),
normalise/resize order, a last divisor, and the logits brought back to the frame."""

from __future__ import annotations

import numpy as np
import pytest

from data.errors import UserError
from data.normalization import IMAGENET_RGB, InputSpec

pytest.importorskip("tensorflow")

ESPNET_LIKE = InputSpec(
    mean=(72.0, 83.0, 73.0),
    std=(45.0, 46.0, 45.0),
    channel_order="BGR",
    divisor=255.0,
    size=(16, 32),
    order="normalize-then-resize",
    output_resize="nearest",
)
ESPNETV2_LIKE = InputSpec(
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    value_range=1.0,
    size=(16, 32),
    resize="pil-bilinear",
    output_resize="nearest",
)


def frame(seed: int = 0) -> np.ndarray:
    """A 32x64 frame of noise: shrinking it shows whether a resize low-pass filters."""
    return np.random.default_rng(seed).integers(0, 256, (32, 64, 3), dtype=np.uint8)


def test_a_recipe_written_before_sizes_existed_reads_and_predicts_as_before():
    from data.pipeline import network_input, normalize

    old = {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0], "channel_order": "BGR", "value_range": 255.0}
    spec = InputSpec.from_metadata({"input": old})
    assert spec == InputSpec(mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), channel_order="BGR")
    assert spec.size is None and spec.divisor == 1.0
    image = frame()
    np.testing.assert_array_equal(network_input(image, spec).numpy(), normalize(image, spec).numpy())
    assert network_input(image, spec).shape == (32, 64, 3)  # the frame as it is, no resize


@pytest.mark.parametrize("spec", [ESPNET_LIKE, ESPNETV2_LIKE, IMAGENET_RGB])
def test_every_field_of_a_recipe_survives_the_checkpoint_metadata(spec):
    written = spec.to_dict()
    assert InputSpec.from_metadata({"input": written}) == spec
    assert written.get("antialias", False) is (spec.resize == "pil-bilinear")
    if spec.size is None:  # a recipe without the new fields is written as before they existed
        assert sorted(written) == ["channel_order", "mean", "std", "value_range"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order": "resize-first"}, "order 'resize-first'"),
        ({"resize": "bicubic"}, "resize 'bicubic'"),
        ({"output_resize": "area"}, "output_resize 'area'"),
        ({"size": [0, 8]}, r"size \(0, 8\)"),
        ({"divisor": 0}, "divisor 0"),
        ({"resize": "pil-bilinear", "order": "normalize-then-resize"}, "only resize-then-normalize"),
    ],
)
def test_a_malformed_recipe_is_refused_with_the_field_named(change, message):
    with pytest.raises(UserError, match=message):
        InputSpec.from_metadata({"input": {**ESPNET_LIKE.to_dict(), **change}})


def test_pil_bilinear_is_pils_own_8_bit_resize_then_the_normalisation():
    from PIL import Image

    from data.pipeline import network_input

    image = frame()
    resized = np.asarray(Image.fromarray(image).resize((32, 16), Image.BILINEAR)).astype(np.float32)
    expected = (resized / np.float32(255) - np.float32(ESPNETV2_LIKE.mean)) / np.float32(ESPNETV2_LIKE.std)
    np.testing.assert_array_equal(network_input(image, ESPNETV2_LIKE).numpy(), expected)


def test_normalise_then_resize_divides_last_and_does_not_antialias():
    import tensorflow as tf

    from data.pipeline import network_input

    image = frame()
    standardized = (image[..., ::-1].astype(np.float32) - np.float32(ESPNET_LIKE.mean)) / np.float32(
        ESPNET_LIKE.std
    )
    # an exact 2x shrink without antialiasing is the mean of each 2x2 block
    blocks = standardized.reshape(16, 2, 32, 2, 3).mean(axis=(1, 3)) / np.float32(255)
    ours = network_input(image, ESPNET_LIKE).numpy()
    np.testing.assert_allclose(ours, blocks, rtol=1e-6, atol=1e-8)
    resized = tf.image.resize(standardized, (16, 32), method="bilinear").numpy()
    np.testing.assert_array_equal(ours, resized / np.float32(255))
    # PIL's antialiased resize of the same frame is another image (a 4-tap filter, rounded to 8 bits)
    antialiased = InputSpec(
        **{**ESPNET_LIKE.__dict__, "order": "resize-then-normalize", "resize": "pil-bilinear"}
    )
    assert np.max(np.abs(network_input(image, antialiased).numpy() - ours)) > 1e-3


def test_logits_come_back_to_the_frame_as_the_recipe_says():
    import tensorflow as tf

    from data.pipeline import frame_logits_from_network

    logits = np.random.default_rng(6).normal(size=(16, 32, 4)).astype(np.float32)
    nearest = frame_logits_from_network(logits, (32, 64), ESPNET_LIKE)
    np.testing.assert_array_equal(nearest, logits.repeat(2, axis=0).repeat(2, axis=1))
    bilinear = frame_logits_from_network(logits, (32, 64), IMAGENET_RGB)
    np.testing.assert_array_equal(bilinear, tf.image.resize(logits[None], (32, 64))[0].numpy())
    assert frame_logits_from_network(logits, (16, 32), ESPNET_LIKE) is logits


class Frames:
    """A sink that keeps each frame's train IDs and logits."""

    def reset(self):
        self.frames = []

    def process(self, sample, train_ids, logits):
        self.frames.append((train_ids, logits))

    def evaluate(self):
        return len(self.frames)


def column_logits(images):
    """Logits that pick class x % 19 at column x of the network's input: each input column tells apart."""
    _, height, width, _ = images.shape
    logits = np.zeros((1, height, width, 19), np.float32)
    logits[0, :, np.arange(width), np.arange(width) % 19] = 1.0
    return logits


@pytest.mark.parametrize("arg_max_only", [False, True])
def test_the_prediction_loop_feeds_the_network_its_size_and_scores_at_the_frames(tiny_dataset, arg_max_only):
    from bench.inference.loop import predict_frames
    from bench.sources.opener import OpenedModel
    from data.cityscapes import list_samples

    seen = []

    def forward(images):
        seen.append(tuple(images.shape))
        logits = column_logits(images)
        return logits.argmax(-1) if arg_max_only else logits

    spec = InputSpec(**{**ESPNETV2_LIKE.__dict__, "size": (32, 64)})  # logits back by nearest
    outputs = "train_ids" if arg_max_only else "logits"
    model = OpenedModel(None, {"input": spec.to_dict()}, forward=forward, outputs=outputs)
    samples = list_samples(tiny_dataset, "val", require_images=True)  # 64x128 frames
    sink = Frames()
    predicted = predict_frames(model, samples, sinks=[sink], progress=False)
    assert set(seen) == {(1, 32, 64, 3)}  # the recipe's size, not the frame's
    assert predicted.stats["input"]["size"] == [32, 64]
    expected = np.repeat(np.arange(64) % 19, 2)  # each network column twice across the 128-wide frame
    for train_ids, logits in sink.frames:
        assert train_ids.shape == (64, 128) and (train_ids == expected).all()
        assert logits is None if arg_max_only else logits.shape == (64, 128, 19)


def test_the_robustness_sweep_applies_the_recipe_as_the_prediction_loop_does(tiny_dataset, tmp_path):
    from PIL import Image

    from bench.inference.loop import predict_frames
    from bench.robustness.replicas import ReplicaModel
    from bench.sources import keras_checkpoint as ckpt
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples
    from models import registry
    from models.inference_modes import InferenceSettings

    spec = InputSpec(**{**ESPNET_LIKE.__dict__, "size": (32, 64)})
    metadata = {
        "model": "espnet",
        "preset": "tiny",
        "options": {},
        "num_classes": 19,
        "input": spec.to_dict(),
    }
    path = ckpt.save(registry.build("espnet", preset="tiny"), tmp_path / "espnet.keras", metadata)
    sample = list_samples(tiny_dataset, "val", require_images=True)[0]
    sink = Frames()
    predict_frames(open_checkpoint(path), [sample], sinks=[sink], progress=False)
    ((train_ids, logits),) = ReplicaModel(path, InferenceSettings()).predict(
        [np.asarray(Image.open(sample.image))]
    )
    assert train_ids.shape == (64, 128)
    np.testing.assert_array_equal(train_ids, sink.frames[0][0])
    np.testing.assert_allclose(logits, sink.frames[0][1], rtol=1e-5, atol=1e-5)
