"""The tf.data input pipeline: exact validation decode, valid labels, aligned augmentation, seeded stream."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data.cityscapes import list_samples
from data.labels import LABEL_TO_TRAIN, name2label
from data.normalization import IMAGENET_RGB
from tests.cityscapes_files import write_frame

tf = pytest.importorskip("tensorflow")
from data import pipeline  # noqa: E402  (after the TensorFlow check)

QUADRANTS = {"sky": (70, 130, 180), "building": (250, 170, 30), "road": (128, 64, 128), "car": (20, 20, 160)}


@pytest.fixture(scope="module")
def quadrant_samples(tmp_path_factory):
    """One frame whose four quadrants are four classes: any flip, shift or scale mismatch shows."""
    root = tmp_path_factory.mktemp("quadrants")
    h, w = 48, 96
    image = np.zeros((h, w, 3), np.uint8)
    label = np.zeros((h, w), np.uint8)
    top, left = slice(0, h // 2), slice(0, w // 2)
    bottom, right = slice(h // 2, h), slice(w // 2, w)
    quadrants = [(top, left), (top, right), (bottom, left), (bottom, right)]
    for (rows, cols), name in zip(quadrants, QUADRANTS, strict=True):
        image[rows, cols] = QUADRANTS[name]
        label[rows, cols] = name2label[name].id
    write_frame(root, "aachen_000000_000019", label, image=image, split="train")
    return list_samples(root, "train", require_images=True)


def numpy_normalize(rgb: np.ndarray) -> np.ndarray:
    mean = np.array([0.485, 0.456, 0.406], np.float32) * 255
    std = np.array([0.229, 0.224, 0.225], np.float32) * 255
    return (rgb.astype(np.float32) - mean) / std


def denormalize(image: np.ndarray) -> np.ndarray:
    return image * np.array(IMAGENET_RGB.std, np.float32) + np.array(IMAGENET_RGB.mean, np.float32)


def test_validation_batches_equal_plain_numpy_decode(tiny_dataset):
    samples = list_samples(tiny_dataset, "val", require_images=True)
    batches = list(pipeline.eval_dataset(samples))
    assert len(batches) == len(samples)
    for sample, (image, label) in zip(samples, batches, strict=True):
        rgb = np.asarray(Image.open(sample.image).convert("RGB"))
        expected_label = LABEL_TO_TRAIN[np.asarray(Image.open(sample.label_ids))]
        assert image.shape == (1, *rgb.shape) and label.shape == (1, *expected_label.shape)
        np.testing.assert_allclose(image.numpy()[0], numpy_normalize(rgb), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(label.numpy()[0], expected_label)


def test_training_labels_hold_only_train_ids_and_ignore(tiny_dataset):
    samples = list_samples(tiny_dataset, "train", require_images=True)
    seen = set()
    for image, label in pipeline.train_dataset(samples, batch=4, crop=(64, 128), seed=3).take(6):
        assert image.dtype == tf.float32 and image.shape == (4, 64, 128, 3)
        assert label.dtype == tf.uint8 and label.shape == (4, 64, 128)
        seen |= set(np.unique(label.numpy()).tolist())
    assert seen <= set(range(19)) | {255}
    assert 255 in seen and len(seen - {255}) >= 5  # ignore (void, padding) and many classes both occur
    raw = set()
    for sample in samples:
        raw |= set(np.unique(np.asarray(Image.open(sample.label_ids))).tolist())
    assert any(LABEL_TO_TRAIN[i] == 255 for i in raw)  # the frames hold ignored label IDs to map


def test_image_and_label_stay_aligned_under_every_augmentation(quadrant_samples):
    colors = np.array([QUADRANTS[n] for n in QUADRANTS], np.float32)
    train_ids = np.array([name2label[n].trainId for n in QUADRANTS])
    valid_fractions = []
    ds = pipeline.train_dataset(quadrant_samples, batch=8, crop=(40, 72), seed=11)
    for image, label in ds.take(4):
        for rgb, lab in zip(denormalize(image.numpy()), label.numpy(), strict=True):
            valid = lab != 255
            nearest = np.argmin(((rgb[valid][:, None, :] - colors[None]) ** 2).sum(-1), axis=1)
            agreement = np.mean(train_ids[nearest] == lab[valid])
            assert agreement > 0.97, f"image and label disagree on {1 - agreement:.1%} of pixels"
            # padding: label 255 exactly where the image holds the padding value (0 after normalisation)
            padded = np.all(np.abs(rgb - np.array(IMAGENET_RGB.mean, np.float32)) < 1e-3, axis=-1)
            np.testing.assert_array_equal(padded, ~valid)
            valid_fractions.append(valid.mean())
    assert min(valid_fractions) < 0.9 and max(valid_fractions) == 1.0  # both padded and inner crops seen


def test_flip_mirrors_image_and_label_together(quadrant_samples):
    sample = quadrant_samples[0]
    image = pipeline.normalize(pipeline.decode_image(str(sample.image)))
    label = pipeline.decode_train_ids(str(sample.label_ids))
    flipped = 0
    for k in range(12):
        out, out_label = pipeline.scale_crop_flip(
            image, label, (48, 96), tf.constant([0, k], tf.int64), scale_range=(1.0, 1.0)
        )
        mirrored = np.array_equal(out.numpy(), image.numpy()[:, ::-1])
        assert mirrored or np.array_equal(out.numpy(), image.numpy())
        expected = label.numpy()[:, ::-1] if mirrored else label.numpy()
        np.testing.assert_array_equal(out_label.numpy(), expected)
        flipped += mirrored
    assert 0 < flipped < 12


def test_crop_at_scale_one_is_a_window_of_the_frame(tiny_dataset):
    sample = list_samples(tiny_dataset, "train", require_images=True)[0]
    image = pipeline.normalize(pipeline.decode_image(str(sample.image)))
    label = pipeline.decode_train_ids(str(sample.label_ids))
    for k in range(5):
        crop, crop_label = pipeline.scale_crop_flip(
            image, label, (32, 48), tf.constant([5, k], tf.int64), scale_range=(1.0, 1.0), flip=False
        )
        crop, crop_label, full, full_label = crop.numpy(), crop_label.numpy(), image.numpy(), label.numpy()
        errors = {
            (y, x): np.abs(full[y : y + 32, x : x + 48] - crop).max()
            for y in range(full.shape[0] - 31)
            for x in range(full.shape[1] - 47)
        }
        (y, x), error = min(errors.items(), key=lambda item: item[1])
        assert error < 1e-4, "the crop is not a window of the frame"  # box coordinates round in float32
        np.testing.assert_array_equal(full_label[y : y + 32, x : x + 48], crop_label)


def test_stream_is_seeded_and_resumes_where_it_left_off(tiny_dataset):
    samples = list_samples(tiny_dataset, "train", require_images=True)

    def labels(seed, start, count):
        ds = pipeline.train_dataset(samples, batch=2, crop=(32, 64), seed=seed, start_step=start)
        return [lab.numpy() for _, lab in ds.take(count)]

    straight = labels(1, 0, 5)
    np.testing.assert_array_equal(np.stack(labels(1, 0, 5)), np.stack(straight))
    np.testing.assert_array_equal(np.stack(labels(1, 3, 2)), np.stack(straight[3:]))
    assert not np.array_equal(np.stack(labels(2, 0, 5)), np.stack(straight))


def test_replica_slices_put_together_are_the_one_process_batches(tiny_dataset):
    """Data-parallel reading: every worker's per-replica slices, put back in replica order, are the global
    batches (same samples, same augmentation) that one process reads, also when resuming mid-stream."""
    samples = list_samples(tiny_dataset, "train", require_images=True)
    common = {"batch": 4, "crop": (32, 48), "seed": 5, "start_step": 2}
    whole = [(i.numpy(), lab.numpy()) for i, lab in pipeline.train_dataset(samples, **common).take(3)]

    def slices(replicas, num_replicas):
        ds = pipeline.train_dataset(samples, replicas=replicas, num_replicas=num_replicas, **common)
        return [(i.numpy(), lab.numpy()) for i, lab in ds.take(3 * len(replicas))]

    two_workers = [slices([0], 2), slices([1], 2)]  # one replica each
    two_by_two = [slices([0, 1], 4), slices([2, 3], 4)]  # two workers of two local replicas
    for step, (image, label) in enumerate(whole):
        parts = [two_workers[0][step], two_workers[1][step]]
        assert parts[0][0].shape == (2, 32, 48, 3)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), image)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), label)
        quarters = [w[2 * step + r] for w in two_by_two for r in range(2)]
        assert quarters[0][1].shape == (1, 32, 48)
        np.testing.assert_array_equal(np.concatenate([q[0] for q in quarters]), image)
        np.testing.assert_array_equal(np.concatenate([q[1] for q in quarters]), label)
    with pytest.raises(ValueError, match="split evenly"):
        pipeline.train_dataset(samples, batch=3, crop=(8, 8), replicas=[0], num_replicas=2)


def test_normalize_follows_the_input_spec_value_range_and_channel_order():
    from data.normalization import IMAGENET_RGB, InputSpec

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    spec = InputSpec(mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), channel_order="BGR", value_range=1.0)
    expected = (rgb[..., ::-1].astype(np.float32) / 255.0 - np.float32([0.1, 0.2, 0.3])) / np.float32(
        [0.5, 0.25, 2]
    )
    np.testing.assert_allclose(pipeline.normalize(rgb, spec).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert InputSpec.from_metadata({}) == IMAGENET_RGB  # checkpoints from before the spec was recorded
    assert InputSpec.from_metadata({"input": spec.to_dict()}) == spec
