"""tf.data input pipeline: Cityscapes samples -> normalised image batches and train-ID label batches.

Training: decode, labelIds -> trainIds (the shared LUT), random scale in [0.5, 2.0], random crop with the
label padded by 255 (ignore) and the image by 0 (the mean after normalisation), horizontal flip. Scale, crop
and padding are one `tf.image.crop_and_resize` per tensor: the crop window is sampled straight from the
decoded frame at the chosen scale, so a 1024x2048 frame is never resized whole. Its sample points are those
of a half-pixel-centre resize (what `tf.image.resize` and OpenCV do), so the result equals resize-then-crop.

Determinism: every random draw is a stateless op seeded by (seed, global sample index), and the epoch order
is a stateless shuffle seeded by (seed, epoch), so a run is reproducible whatever the parallelism, and
`start_step` resumes the exact stream an interrupted run would have seen next.

Normalisation lives here, not in the models: `normalize` is the one function both training and prediction use,
with the checkpoint's own `InputSpec` (data/normalization.py; ImageNet mean/std on 0..255 RGB by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from data.cityscapes import Sample
from data.labels import IGNORE_ID, LABEL_TO_TRAIN
from data.normalization import IMAGENET_RGB, InputSpec
from data.sizes import SCALE_RANGE


def normalize(image, spec: InputSpec = IMAGENET_RGB) -> tf.Tensor:
    """0..255 RGB (any numeric dtype) -> float32 network input as `spec` says (default: ImageNet, RGB).

    The operations and their order are the reference implementations' (x / 255 as torchvision's to_tensor,
    then (x - mean) / std, then / divisor), so a recipe reproduces their float32 input to the last bit.
    """
    return _divide(_standardize(image, spec), spec)


def _standardize(image, spec: InputSpec) -> tf.Tensor:
    x = tf.cast(image, tf.float32)
    if spec.value_range != 255.0:
        x = x / np.float32(255.0 / spec.value_range)
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    return (x - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)


def _divide(x: tf.Tensor, spec: InputSpec) -> tf.Tensor:
    return x if spec.divisor == 1.0 else x / np.float32(spec.divisor)


def _pil_resize(image: np.ndarray, size: np.ndarray) -> np.ndarray:
    from PIL import Image

    height, width = (int(v) for v in size)
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def network_input(image, spec: InputSpec = IMAGENET_RGB) -> tf.Tensor:
    """uint8 (H, W, 3) RGB frame -> the float32 input the network of `spec` sees, at `spec.size` if it has
    one, resized and normalised in the recipe's order (mathematically the same for a linear resize on
    floats, not to the bit, and not at all for PIL's 8-bit one): each recipe runs as its authors ran it."""
    if spec.size is None:
        return normalize(image, spec)
    height, width = spec.size
    if spec.resize == "pil-bilinear":
        resized = tf.numpy_function(_pil_resize, [image, tf.constant(spec.size)], tf.uint8, stateful=False)
        resized.set_shape((height, width, 3))
        return normalize(resized, spec)
    if spec.order == "normalize-then-resize":  # ESPNet: (x - mean) / std, resize, / 255
        return _divide(tf.image.resize(_standardize(image, spec), (height, width), method="bilinear"), spec)
    return normalize(tf.image.resize(tf.cast(image, tf.float32), (height, width), method="bilinear"), spec)


def frame_size(path) -> tuple[int, int]:
    """(height, width) of an image file, from its header alone."""
    from PIL import Image

    with Image.open(path) as image:
        return image.height, image.width


def frame_logits_from_network(logits: np.ndarray, frame_size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """Logits (h, w, C) at the network's input size -> (H, W, C) at the frame's, as `spec.output_resize`
    says (nearest: each network pixel's logits repeated, what resizing the arg-max with PIL does)."""
    if tuple(logits.shape[:2]) == tuple(frame_size):
        return logits
    method = "nearest" if spec.output_resize == "nearest" else "bilinear"
    return tf.image.resize(logits[None], frame_size, method=method)[0].numpy()


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """uint8 (H, W, 3) RGB from a PNG (or JPEG, BMP) path (a grey or RGBA file is converted).

    A JPEG is decoded with libjpeg's accurate integer DCT, the pixels Pillow (and so `bench generalize`,
    which decodes with it) gets; TensorFlow's default fast DCT differs from them in about 2% of the values
    (BDD100K's frames are JPEGs: both commands must see the same frame)."""
    data = tf.io.read_file(path)
    return tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
    )


def decode_train_ids(path: tf.Tensor) -> tf.Tensor:
    """uint8 (H, W) train IDs from an 8-bit labelIds PNG, through the shared LUT (255 = ignore)."""
    label_ids = tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=tf.uint8)[..., 0]
    return tf.gather(tf.constant(LABEL_TO_TRAIN), tf.cast(label_ids, tf.int32))


def _paths(samples: Sequence[Sample]) -> tuple[tf.Tensor, tf.Tensor]:
    missing = [s for s in samples if s.image is None]
    if missing:
        from data.cityscapes import DatasetError

        raise DatasetError(
            f"{missing[0].label_ids} has no leftImg8bit image: training and prediction "
            f"need the images (found {len(missing)} such frames)"
        )
    if not samples:
        from data.cityscapes import DatasetError

        raise DatasetError("no samples to read: the split is empty")
    # a frame of another layout (data/layouts.py) has `labels` in its own encoding: only its image is read
    labels = [str(getattr(s, "label_ids", None)) for s in samples]
    return tf.constant([str(s.image) for s in samples]), tf.constant(labels)


def scale_crop_flip(
    image: tf.Tensor,
    label: tf.Tensor,
    crop: tuple[int, int],
    seed: tf.Tensor,
    scale_range: tuple[float, float] = SCALE_RANGE,
    flip: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Random scale, crop (padding: image 0, label 255) and flip of one normalised image and its label.

    `seed` is a stateless seed pair; the same seed gives the same crop. The crop may hang over any border
    of a frame smaller than the crop, so small frames land at random places in the padded window.
    """
    crop_h, crop_w = crop
    s_scale, s_y, s_x, s_flip = tf.unstack(tf.random.experimental.stateless_split(seed, num=4))
    scale = tf.random.stateless_uniform([], s_scale, minval=scale_range[0], maxval=scale_range[1])
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)

    def offset(size: tf.Tensor, crop_size: int, s: tf.Tensor) -> tf.Tensor:
        # Top-left corner of the window in scaled-pixel units; negative when the window overhangs.
        free = tf.round(size * scale) - crop_size
        low, high = tf.minimum(free, 0.0), tf.maximum(free, 0.0)
        return tf.floor(low + tf.random.stateless_uniform([], s) * (high - low + 1.0))

    oy, ox = offset(height, crop_h, s_y), offset(width, crop_w, s_x)
    # Half-pixel centres: crop pixel i samples source coordinate (o + i + 0.5) / scale - 0.5.
    y1 = (oy + 0.5) / scale - 0.5
    x1 = (ox + 0.5) / scale - 0.5
    y2 = y1 + (crop_h - 1) / scale
    x2 = x1 + (crop_w - 1) / scale
    box = tf.stack(
        [
            y1 / tf.maximum(height - 1.0, 1.0),
            x1 / tf.maximum(width - 1.0, 1.0),
            y2 / tf.maximum(height - 1.0, 1.0),
            x2 / tf.maximum(width - 1.0, 1.0),
        ]
    )[None]
    image = tf.image.crop_and_resize(image[None], box, [0], crop, method="bilinear", extrapolation_value=0.0)[
        0
    ]
    label = tf.image.crop_and_resize(
        tf.cast(label, tf.float32)[None, :, :, None],
        box,
        [0],
        crop,
        method="nearest",
        extrapolation_value=float(IGNORE_ID),
    )[0, :, :, 0]
    label = tf.cast(label, tf.uint8)
    if flip:
        do_flip = tf.random.stateless_uniform([], s_flip) < 0.5
        image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
        label = tf.cond(do_flip, lambda: tf.reverse(label, [1]), lambda: label)
    return image, label


def train_dataset(
    samples: Sequence[Sample],
    *,
    batch: int,
    crop: tuple[int, int],
    seed: int = 0,
    start_step: int = 0,
    scale_range: tuple[float, float] = SCALE_RANGE,
    flip: bool = True,
    parallel: int | None = None,
    replicas: Sequence[int] = (0,),
    num_replicas: int = 1,
) -> tf.data.Dataset:
    """Endless augmented batches `(image float32 (B, h, w, 3), label uint8 (B, h, w))`.

    Each epoch visits every sample once in a seeded order; batch k of the stream is the same whether it is
    reached by training from step 0 or by resuming with `start_step=k`.

    Data-parallel training: `batch` stays the global batch; replica r of `num_replicas` takes the r-th
    slice of `batch // num_replicas` samples of every global batch. A worker passes the global ids of its
    own `replicas` and gets, per step, one slice per replica in that order, so all workers together read
    each global batch once, every sample with the seed (and so the augmentation) one process would use.
    """
    images, labels = _paths(samples)
    n = len(samples)
    crop = (int(crop[0]), int(crop[1]))
    replica_ids = [int(r) for r in replicas]
    if num_replicas < 1 or batch % num_replicas or not replica_ids:
        raise ValueError(f"batch {batch} must split evenly over {num_replicas} replicas")
    if min(replica_ids) < 0 or max(replica_ids) >= num_replicas:
        raise ValueError(f"replica ids {replica_ids} must lie in 0..{num_replicas - 1}")
    per_replica = batch // num_replicas
    local = tf.constant(replica_ids, tf.int64)

    def global_index(q: tf.Tensor) -> tf.Tensor:
        # q counts this worker's samples: slice p = q // per_replica belongs to step
        # start + p // len(replicas) and to replica replicas[p % len(replicas)]; the sample is that slice's
        # (q % per_replica)-th.
        p = q // per_replica
        step = int(start_step) + p // len(replica_ids)
        replica = tf.gather(local, p % len(replica_ids))
        return step * batch + replica * per_replica + q % per_replica

    def pick(k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=[seed, k // n])
        i = order[k % n]
        return images[i], labels[i], tf.stack([tf.constant(seed, tf.int64), k])

    def load(image_path: tf.Tensor, label_path: tf.Tensor, element_seed: tf.Tensor):
        image = normalize(decode_image(image_path))
        label = decode_train_ids(label_path)
        return scale_crop_flip(image, label, crop, element_seed, scale_range, flip)

    workers = parallel or tf.data.AUTOTUNE
    ds = tf.data.Dataset.counter(dtype=tf.int64)
    ds = ds.map(lambda q: pick(global_index(q)))
    ds = ds.map(load, num_parallel_calls=workers, deterministic=True)
    ds = ds.batch(per_replica, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_dataset(
    samples: Sequence[Sample],
    *,
    with_labels: bool = True,
    parallel: int | None = None,
    input_spec: InputSpec = IMAGENET_RGB,
    prefetch: int | None = None,
) -> tf.data.Dataset:
    """Whole frames, one at a time and in sample order, without augmentation: `(image (1, H, W, 3)[, label])`.

    `prefetch` frames are decoded ahead of the one taken (None: as many as tf.data's autotuning decides).

    Frames of a split may differ in size, so the batch is always one frame. A recipe with an input size
    (`input_spec.size`) gives frames at that size: `frame_logits_from_network` brings logits back.
    """
    images, labels = _paths(samples)
    workers = parallel or tf.data.AUTOTUNE
    if with_labels:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        ds = ds.map(
            lambda i, lb: (network_input(decode_image(i), input_spec), decode_train_ids(lb)),
            num_parallel_calls=workers,
            deterministic=True,
        )
    else:
        ds = tf.data.Dataset.from_tensor_slices(images)
        ds = ds.map(
            lambda i: network_input(decode_image(i), input_spec),
            num_parallel_calls=workers,
            deterministic=True,
        )
    return ds.batch(1).prefetch(tf.data.AUTOTUNE if prefetch is None else prefetch)
