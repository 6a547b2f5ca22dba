"""One way to open a model for prediction: `open_checkpoint(path)` -> an `OpenedModel`.

A source is one kind of thing a user may name: a published PyTorch `.pth` (converted once into a checkpoint
of ours, cached by content hash under `CONVERTED_ROOT`), a LiteRT `.tflite` file (bench/engine/litert.py,
recognised by its content), a published weights name of `bench weights` (the checked file under
checkpoints/weights/, downloaded there first), and a `.keras` checkpoint or a training folder (its latest
checkpoint). `SOURCES` is tried in order, the first whose `matches` accepts the name opens it; a new kind is
one more `Source` put before the catch-all Keras one. A source without a Keras model (LiteRT) gives an
`OpenedModel` with `keras=None` and its own `forward`; the prediction loop (bench/engine/loop.py) needs
nothing else.

`bench/engine/checkpoint.py` only stores and reads checkpoint files; the converters live in
`bench/engine/convert/`. Neither imports this module, so opening is the one place that chooses.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from data.errors import UserError
from data.normalization import InputSpec


@dataclass
class OpenedModel:
    """A model ready to predict, with what it says about itself.

    `keras`: a Keras model whose output is the logits (B, H, W, C) in train-ID order (a dict output's
    "logits" is taken), or None for sources without one; then `forward` must be given: a callable
    (1, H, W, 3) normalised float32 -> (1, H, W, C) float32 logits. `metadata` is the checkpoint's
    (`model`, `preset`, `options`, `steps`, `input` normalisation, `protocol`, `source`, ...) plus
    `checkpoint` (the file opened), `precision` and `folded_bn`. `jit`: XLA-compile the traced forward
    pass (None: when a GPU is present). `outputs`: "logits", or "train_ids" for a model that gives only its
    arg-max (1, H, W) (then only `--mode whole` without `--flip` applies, and sinks get `logits=None`).
    `strided`: the forward slides windows of its own fixed input size over the frame and takes their step
    as `forward(images, stride=(H, W))` (a LiteRT file): `--stride` reaches it.
    """

    keras: Any | None
    metadata: dict[str, Any] = field(default_factory=dict)
    forward: Callable | None = None
    jit: bool | None = None
    outputs: str = "logits"
    strided: bool = False

    @property
    def input_spec(self) -> InputSpec:
        """The input normalisation the model was trained with (ImageNet RGB when none is recorded)."""
        return InputSpec.from_metadata(self.metadata)

    @property
    def protocol(self) -> dict | None:
        """The published test protocol of a converted checkpoint (crop, scales, flip), else None."""
        return self.metadata.get("protocol")

    @cached_property
    def sha256(self) -> str | None:
        """Content hash of what was opened: the published file's for a converted one, else the file's."""
        from bench.engine.convert.published import sha256

        source = self.metadata.get("source")
        if isinstance(source, dict) and source.get("sha256"):
            return source["sha256"]
        path = self.metadata.get("checkpoint")
        return sha256(path) if path and Path(path).is_file() else None

    def logits_function(self) -> Callable:
        """The forward pass the loop calls: (1, H, W, 3) -> float32 logits (1, H, W, C)."""
        if self.forward is not None:
            return self.forward
        if self.keras is None:
            raise ValueError("an OpenedModel needs a Keras model or a forward callable")
        import tensorflow as tf

        model = self.keras
        jit = bool(tf.config.list_physical_devices("GPU")) if self.jit is None else self.jit

        def forward(images):
            outputs = model(images, training=False)
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs
            # float32 whatever the policy (registry models already end in a float32 resize; plugins may not)
            return tf.cast(logits, tf.float32)

        self.forward = tf.function(forward, jit_compile=jit)
        return self.forward


def as_opened(model: Any) -> OpenedModel:
    """`model` as the loop takes it: an `OpenedModel` as it is, a Keras model (logits or the dict of
    `aux_head=True` builders) with no metadata, or a bare forward callable."""
    if isinstance(model, OpenedModel):
        return model
    import keras

    if isinstance(model, keras.Model):
        return OpenedModel(model)
    if callable(model):
        return OpenedModel(None, forward=model)
    raise TypeError(f"cannot predict with a {type(model).__name__}: give a Keras model or an OpenedModel")


@dataclass(frozen=True)
class Source:
    """One kind of model a user may name: `matches(name)` says whether it is this kind, `open(name, *,
    precision, fold_bn, cache)` opens it."""

    name: str
    matches: Callable[[str], bool]
    open: Callable[..., OpenedModel]


def open_checkpoint(
    path: str | os.PathLike,
    *,
    precision: str = "fp32",
    fold_bn: bool = False,
    cache: str | os.PathLike | None = None,
) -> OpenedModel:
    """The model `path` names, ready to predict: a `.keras` checkpoint, a training folder (its latest
    checkpoint) or a PyTorch `.pth` (converted once into `cache`, default checkpoints/converted/).

    `precision` "bf16" rebuilds the model under Keras' mixed_bfloat16 policy (models/precision.py; weights
    stay float32); `fold_bn` merges BatchNorm into the convolutions (same outputs to float rounding, faster;
    a model that cannot be folded is used as it is, with a warning).
    """
    name = os.fspath(path)
    for source in SOURCES:
        if source.matches(name):
            return source.open(name, precision=precision, fold_bn=fold_bn, cache=cache)
    raise UserError(f"no source opens {name}")  # unreachable: the Keras source takes everything


def _is_torch(name: str) -> bool:
    from bench.engine.convert.converter import is_torch_checkpoint

    return is_torch_checkpoint(name) and Path(name).is_file()


def _open_torch(name: str, *, precision: str, fold_bn: bool, cache) -> OpenedModel:
    from bench.engine.convert.converter import converted

    return _open_keras(converted(name, root=cache), precision=precision, fold_bn=fold_bn, cache=cache)


def _open_keras(name, *, precision: str, fold_bn: bool, cache=None) -> OpenedModel:
    """A checkpoint of `bench train` (rebuilt from the registry, weights loaded) or a plain `.keras` file
    from elsewhere (loaded as saved: its custom layers must be importable and registered)."""
    import keras

    from bench.engine import checkpoint as ckpt
    from models.precision import check_precision

    path = ckpt.resolve(name)
    metadata = ckpt.read_metadata(path)
    if check_precision(precision) != "fp32" and not metadata.get("model"):
        raise UserError(
            f"{path} is a plain .keras file, saved with its own dtypes: --precision {precision} needs a "
            f"checkpoint that names its registry model (written by `bench train`); use --precision fp32"
        )
    if metadata.get("model"):
        model = ckpt.rebuild(metadata, aux_head=True, precision=precision)
        ckpt.load_weights(model, path)
    else:
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for unreadable or foreign files
            raise UserError(f"cannot load {path} as a Keras model ({type(exc).__name__}: {exc})") from exc
        # `plain`: no bench.json, so no registry model, recipe or steps to report (rows leave them out)
        metadata = {"model": model.name, "num_classes": None, "steps": None, "plain": True}
    output = model.output
    if isinstance(output, dict):
        model = keras.Model(model.input, output["logits"], name=f"{model.name}_logits")
    metadata["checkpoint"] = str(path)
    metadata["precision"] = precision
    metadata["folded_bn"] = False
    if fold_bn:
        from models.batchnorm_folding import fold_batchnorm

        try:
            model, metadata["folded_bn"] = fold_batchnorm(model), True
        except Exception as exc:  # a plugin's layers may not round-trip through get_config
            warnings.warn(
                f"{path}: BatchNorm not folded ({type(exc).__name__}: {exc}); predicting unfolded",
                stacklevel=3,
            )
    return OpenedModel(model, metadata)


def _is_litert(name: str) -> bool:
    from bench.engine.litert import is_litert

    return Path(name).is_file() and is_litert(name)


def _open_litert(name: str, *, precision: str, fold_bn: bool, cache) -> OpenedModel:
    """An `OpenedModel` whose forward runs the interpreter's `frame_outputs` on the frame.

    The loop decodes frames with the identity recipe (0..255 RGB as read: metadata "input"), since the
    model's own recipe is applied by bench/engine/litert.py; the file's published name
    (bench/engine/weights.py, by SHA-256) names the model when it is one. `fold_bn` and `cache` do not
    apply to a LiteRT file."""
    import numpy as np

    from bench.engine.convert.published import sha256
    from bench.engine.litert import RAW_PIXELS, LiteRTModel
    from bench.engine.weights import by_sha256
    from models.precision import check_precision

    if check_precision(precision) != "fp32":
        raise UserError(
            f"{name} is a LiteRT model, run in its own dtypes: --precision {precision} does not apply"
        )
    model = LiteRTModel(name)
    digest = sha256(model.path)
    published = by_sha256(digest)
    metadata = {
        **model.metadata,
        "model": published.name if published else model.path.stem,
        "weights": published.name if published else None,
        "sha256": digest,
        "input": RAW_PIXELS.to_dict(),
        "precision": "int8" if model.input_quantization else "fp32",
        "folded_bn": False,
    }

    def forward(images, stride: tuple[int, int] | None = None) -> np.ndarray:
        train_ids, logits = model.frame_outputs(np.asarray(images)[0], stride=stride)
        return (train_ids if logits is None else logits)[None]

    outputs = "train_ids" if model.output_kind == "argmax" else "logits"
    return OpenedModel(None, metadata, forward=forward, outputs=outputs, strided=model.input_size is not None)


def _is_weights_name(name: str) -> bool:
    """A published weights name (`bench weights`) that is not also a path."""
    from bench.engine.weights import table

    return not Path(name).exists() and any(name == entry.name for entry in table())


def _open_weights(name: str, *, precision: str, fold_bn: bool, cache) -> OpenedModel:
    """Published weights by name: the checked file in checkpoints/weights/, downloaded there first."""
    from bench.engine.download import weights_file
    from bench.engine.weights import get

    path = weights_file(get(name))
    return open_checkpoint(path, precision=precision, fold_bn=fold_bn, cache=cache)


SOURCES: list[Source] = [
    Source("pytorch", _is_torch, _open_torch),
    Source("litert", _is_litert, _open_litert),
    Source("weights", _is_weights_name, _open_weights),
    Source("keras", lambda name: True, _open_keras),  # last: a .keras file or a training folder
]
