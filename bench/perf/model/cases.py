"""What `bench perf model` times, parsed before TensorFlow starts: MODEL[:PRESET]@HxW cases and the
`--train-step` BATCHxHxW, with the default cases."""

from __future__ import annotations

from data.errors import UserError
from data.sizes import parse_dims, parse_size

DEFAULT_CASES = ("pspnet@512x1024", "pspnet:cpu@256x512", "fcn:cpu@256x512")


def parse_case(text: str) -> tuple[str, str | None, tuple[int, int]]:
    """ "pspnet:cpu@256x512" -> ("pspnet", "cpu", (256, 512)); a plugin "pkg.mod:func@HxW" has no preset."""
    from models import registry

    model, _, size = text.partition("@")
    name, _, preset = model.partition(":")
    if name not in registry.available():
        name, preset = model, ""
    registry.resolve_options(name, preset or None)  # an unknown model or preset fails before any timing
    try:
        return name, preset or None, parse_size(size)
    except ValueError:
        raise UserError(
            f"perf model case '{text}' is not MODEL[:PRESET]@HxW, e.g. pspnet:cpu@256x512"
        ) from None


def parse_train_step(text: str) -> tuple[int, int, int]:

    try:
        return parse_dims(text, 3, "8x256x256")
    except ValueError as exc:
        raise UserError(f"--train-step: {exc} (batch x height x width)") from None
