"""What every model source gives the prediction loop: an `OpenedModel` (a forward callable, its input recipe
and what its output is), and the `Source` record a source module declares (opener.py lists them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

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
    def runtime(self) -> str:
        """What runs the network, as rows name it: "tensorflow" (its version is a column of its own), or
        the runtime, its version and provider ("litert 2.3.0", "onnxruntime 1.32.0 CPUExecutionProvider")."""
        meta = self.metadata
        named = [str(meta[k]) for k in ("runtime", "runtime_version", "provider") if meta.get(k)]
        return " ".join(named) or "tensorflow"

    @property
    def protocol(self) -> dict | None:
        """The published test protocol of a converted checkpoint (crop, scales, flip), else None."""
        return self.metadata.get("protocol")

    @cached_property
    def sha256(self) -> str | None:
        """Content hash of what was opened: the published file's for a converted one, else the file's."""
        from bench.sources.convert.published import sha256

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
    precision, fold_bn, cache)` opens it. A source that only finds a file (published weights by name)
    returns that file's path instead, and `open_checkpoint` opens it with the source that matches it."""

    name: str
    matches: Callable[[str], bool]
    open: Callable[..., OpenedModel | os.PathLike]
    takes_options: bool = False  # `open` also takes `options=SourceOptions` (exported graphs)


@dataclass(frozen=True)
class SourceOptions:
    """How an exported graph (ONNX, OpenVINO IR) is run: `runtime` (onnxruntime|openvino, None: the file's
    default), `providers` (ONNX Runtime execution providers or the OpenVINO device, None: CPU), `threads`
    (None: the cores this process may use) and `recipe` (a JSON file, None: the sidecar or the file's
    metadata). Sources of other kinds refuse them (bench/arguments.py: --runtime, --providers, --recipe)."""

    runtime: str | None = None
    providers: tuple[str, ...] | None = None
    threads: int | None = None
    recipe: str | None = None

    def given(self) -> list[str]:
        """The options set, as the command line names them."""
        names = {
            "runtime": "--runtime",
            "providers": "--providers",
            "threads": "--threads",
            "recipe": "--recipe",
        }
        return [flag for key, flag in names.items() if getattr(self, key) is not None]
