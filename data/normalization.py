"""How a network wants its input: value range, channel order, mean and std, carried by each checkpoint.

Models trained here see ImageNet statistics on 0..255 RGB; a converted checkpoint may want other statistics
or BGR input. A checkpoint records its `InputSpec` (metadata key "input"), and prediction applies the
checkpoint's own, so nothing relies on a constant elsewhere matching it. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data.errors import UserError

CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class InputSpec:
    """Network input = (image scaled to `value_range`, channels in `channel_order`, - mean) / std.

    mean and std are given per channel in the network's channel order; images are read as 0..255 RGB.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    value_range: float = 255.0  # the image's maximum value as the network sees it: 255 or 1

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise UserError(f"input channel order {self.channel_order!r}: choose one of {CHANNEL_ORDERS}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0 or self.value_range <= 0:
            raise UserError(
                f"input normalisation mean={self.mean} std={self.std} value_range={self.value_range}: "
                "give three means, three positive stds and a positive value range"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "value_range": self.value_range,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> InputSpec:
        """The spec a checkpoint records; checkpoints written before it was recorded get IMAGENET_RGB."""
        spec = metadata.get("input")
        if spec is None:
            return IMAGENET_RGB
        try:
            return cls(
                mean=tuple(float(v) for v in spec["mean"]),
                std=tuple(float(v) for v in spec["std"]),
                channel_order=str(spec.get("channel_order", "RGB")),
                value_range=float(spec.get("value_range", 255.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"checkpoint input normalisation {spec!r} is malformed ({exc})") from None


# torchvision's ImageNet statistics on 0..255 RGB: what this project's models train with
IMAGENET_RGB = InputSpec(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
