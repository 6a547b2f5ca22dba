"""How a network wants its input: value range, channel order, mean and std, the resolution it sees and how
the frame is brought to it (and its logits back), carried by each checkpoint.

Models trained here see ImageNet statistics on 0..255 RGB at the frame's own size; a converted checkpoint
may want other statistics, BGR input, a fixed input size and its authors' resize, in their order. A
checkpoint records its `InputSpec` (metadata key "input"), and prediction applies the checkpoint's own, so
nothing relies on a constant elsewhere matching it. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from data.errors import UserError

CHANNEL_ORDERS = ("RGB", "BGR")
ORDERS = ("resize-then-normalize", "normalize-then-resize")
RESIZES = ("bilinear", "pil-bilinear")
"""bilinear: half-pixel centres, no antialiasing, on floats (tf.image.resize; OpenCV's INTER_LINEAR);
pil-bilinear: PIL's Image.resize(BILINEAR) of the 8-bit image, antialiased when it shrinks, 8-bit result."""
OUTPUT_RESIZES = ("bilinear", "nearest")


@dataclass(frozen=True)
class InputSpec:
    """Network input = ((image scaled to `value_range`, channels in `channel_order`) - mean) / std / divisor,
    the frame resized to `size` before (`resize-then-normalize`) or after (`normalize-then-resize`) that.

    mean and std are given per channel in the network's channel order; images are read as 0..255 RGB.
    `size` (height, width) is the network's input resolution; None feeds the frame as it is (the models
    trained here). With a size, the logits come back to the frame's resolution by `output_resize`.
    Recipes written before `size` existed read as None, so old checkpoints predict exactly as before.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    value_range: float = 255.0  # the image's maximum value as the network sees it: 255 or 1
    divisor: float = 1.0  # applied last (ESPNet divides its normalised input by 255)
    size: tuple[int, int] | None = None  # (height, width) the network sees, or None: the whole frame
    order: str = "resize-then-normalize"
    resize: str = "bilinear"
    output_resize: str = "bilinear"  # logits at `size` -> the frame's resolution

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise UserError(f"input channel order {self.channel_order!r}: choose one of {CHANNEL_ORDERS}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0 or self.value_range <= 0:
            raise UserError(
                f"input normalisation mean={self.mean} std={self.std} value_range={self.value_range}: "
                "give three means, three positive stds and a positive value range"
            )
        for value, choices, what in (
            (self.order, ORDERS, "order"),
            (self.resize, RESIZES, "resize"),
            (self.output_resize, OUTPUT_RESIZES, "output_resize"),
        ):
            if value not in choices:
                raise UserError(f"input recipe {what} {value!r}: choose one of {choices}")
        if self.divisor <= 0:
            raise UserError(f"input recipe divisor {self.divisor}: give a positive number")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise UserError(f"input recipe size {self.size}: give (height, width), both positive")
        if self.resize == "pil-bilinear" and self.order != "resize-then-normalize":
            raise UserError(
                "input recipe: pil-bilinear resizes the 8-bit image, so only resize-then-normalize"
            )

    @property
    def antialias(self) -> bool:
        """Whether shrinking the frame to `size` low-pass filters it first (PIL does, OpenCV does not)."""
        return self.resize == "pil-bilinear"

    def to_dict(self) -> dict[str, Any]:
        """The recipe as metadata; the fields added for sized recipes only where they differ from the
        defaults, so a recipe without them is written exactly as before they existed."""
        written = {
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "value_range": self.value_range,
        }
        if self.divisor != 1.0:
            written["divisor"] = self.divisor
        if self.size is not None:
            written.update(
                size=list(self.size),
                order=self.order,
                resize=self.resize,
                antialias=self.antialias,  # for the reader: follows from `resize`
                output_resize=self.output_resize,
            )
        return written

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> InputSpec:
        """The spec a checkpoint records; checkpoints written before it was recorded get IMAGENET_RGB."""
        spec = metadata.get("input")
        if spec is None:
            return IMAGENET_RGB
        try:
            size = spec.get("size")
            return cls(
                mean=tuple(float(v) for v in spec["mean"]),
                std=tuple(float(v) for v in spec["std"]),
                channel_order=str(spec.get("channel_order", "RGB")),
                value_range=float(spec.get("value_range", 255.0)),
                divisor=float(spec.get("divisor", 1.0)),
                size=None if size is None else (int(size[0]), int(size[1])),
                order=str(spec.get("order", "resize-then-normalize")),
                resize=str(spec.get("resize", "bilinear")),
                output_resize=str(spec.get("output_resize", "bilinear")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UserError(f"checkpoint input normalisation {spec!r} is malformed ({exc})") from None


# torchvision's ImageNet statistics on 0..255 RGB: what this project's models train with
IMAGENET_RGB = InputSpec(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
