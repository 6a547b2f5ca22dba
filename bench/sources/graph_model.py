"""An exported graph (ONNX or OpenVINO IR) on a runtime, with its recipe: a forward pass of normalised
frames (1, H, W, 3) -> logits (1, H, W, 19) in train-ID order, or train IDs (1, H, W), as the loop takes it.

What the graph says is read from it, what it cannot say comes from the recipe (bench/sources/graph_recipe.py):
* Layout: the input axis of size 3 (axis 1: NCHW, axis 3: NHWC); the recipe's `layout` where both or neither
  are 3, and a recipe layout the graph contradicts is refused. The output has the input's layout.
* Shapes: a dynamic input takes the frame as the loop gives it (at the recipe's `size` where it has one); a
  fixed one takes the recipe's `size` (which must be the graph's), or without one slides windows of the
  graph's size over the frame (bench/sources/windows.py, as for LiteRT: 1/3 overlap, the last flush with
  the border, padded with 0 where the frame is smaller; logits averaged, an arg-max taken from the window
  whose centre is nearest). `--stride` reaches these windows.
* Resolution: an output smaller than its input (1/2, 1/4, 1/8) comes back to the input's size by the
  recipe's `output_resize` (bilinear with half-pixel centres, or nearest); train IDs always by nearest.
* Label space: `output.channels` picks the 19 train-ID channels in order (a background channel is left
  out of the arg-max); a train-ID map's values are mapped through it, anything else becomes void (255).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.sources.graph_recipe import NUM_TRAIN_IDS, GraphRecipe
from bench.sources.litert_runtime import DEFAULT_OVERLAP, VOID
from bench.sources.windows import resize_bilinear, resize_nearest, slide
from data.errors import UserError

Shape = tuple[int | None, ...]


def detect_layout(shape: Shape, given: str | None, path: Path) -> str:
    """NCHW or NHWC of a (N, ?, ?, ?) input `shape`, from its axis of size 3 or from the recipe (`given`)."""
    if len(shape) != 4:
        raise UserError(
            f"{path}: input of shape {_show(shape)} is not one image (N, 3, H, W) or (N, H, W, 3): export a "
            f"model that takes a batch of RGB images"
        )
    says = [layout for layout, axis in (("NCHW", 1), ("NHWC", 3)) if shape[axis] == 3]
    if given is not None:
        axis = 1 if given == "NCHW" else 3
        if shape[axis] not in (3, None):
            raise UserError(
                f"{path}: the recipe says layout {given}, but the input {_show(shape)} has {shape[axis]} on "
                f"axis {axis}, where {given} keeps its 3 colour channels: fix the recipe's layout"
            )
        return given
    if len(says) != 1:
        raise UserError(
            f"{path}: input {_show(shape)} does not say its layout (an axis of size 3 at 1 for NCHW or at 3 "
            f'for NHWC, {"both" if says else "neither"} here): give "layout": "NCHW" or "NHWC" in the '
            f"recipe"
        )
    return says[0]


class GraphModel:
    """`runner` (bench/sources/graph_runtimes.py) of the file `path`, read with `recipe`.

    `frame_outputs(x)` is the whole interface: x (H, W, 3) normalised float32 -> logits (H, W, 19) float32,
    or train IDs (H, W) uint8 when the recipe says `train_ids`."""

    def __init__(self, runner: Any, recipe: GraphRecipe, path: Path):
        self.runner, self.recipe, self.path = runner, recipe, path
        shape = runner.input_shape
        self.layout = detect_layout(shape, recipe.layout, path)
        if shape[0] not in (1, None):
            raise UserError(f"{path}: input batch of {shape[0]}: export with batch 1 or a dynamic batch")
        if runner.input_dtype.kind != "f":
            raise UserError(
                f"{path}: input dtype {runner.input_dtype} is not float: the harness feeds the recipe's "
                f"normalised float input (export the float model, or put the cast inside the graph)"
            )
        spatial = shape[2:4] if self.layout == "NCHW" else shape[1:3]
        self.input_size = tuple(spatial) if None not in spatial else None
        size = recipe.input.size
        if self.input_size is not None and size is not None and tuple(size) != self.input_size:
            raise UserError(
                f"{path}: the recipe's input size {size[0]}x{size[1]} is not the graph's fixed "
                f"{self.input_size[0]}x{self.input_size[1]}: give the graph's size (or none, to slide "
                f"windows of it over the frame)"
            )
        self.slides = self.input_size is not None and size is None
        self.stride = (
            tuple(math.ceil(c * (1 - DEFAULT_OVERLAP)) for c in self.input_size) if self.slides else None
        )
        self._check_output()
        if recipe.kind == "train_ids":
            self._lut = np.full(max(recipe.channels) + 1, VOID, np.uint8)
            self._lut[list(recipe.channels)] = np.arange(NUM_TRAIN_IDS, dtype=np.uint8)

    def _check_output(self) -> None:
        shape, dtype, kind = self.runner.output_shape, self.runner.output_dtype, self.recipe.kind
        integer = dtype.kind in "iub"
        if kind == "logits" and integer:
            raise UserError(
                f"{self.path}: output of dtype {dtype} is an integer map, but the recipe says logits: "
                f'write "output": {{"kind": "train_ids"}}'
            )
        if kind == "train_ids" and not integer:
            raise UserError(
                f"{self.path}: output of dtype {dtype} holds scores, but the recipe says train_ids: write "
                f'"output": {{"kind": "logits"}}'
            )
        axis = 1 if self.layout == "NCHW" else 3
        if kind == "logits":
            if len(shape) != 4:
                raise UserError(
                    f"{self.path}: logits output {_show(shape)} is not (N, C, h, w) / (N, h, w, C)"
                )
            channels = shape[axis]
            if channels is not None and channels <= max(self.recipe.channels):
                raise UserError(
                    f"{self.path}: output {_show(shape)} has {channels} channels on axis {axis} "
                    f"({self.layout}), but the recipe's output.channels reads channel "
                    f"{max(self.recipe.channels)}: fix output.channels or the layout"
                )
        elif not (len(shape) == 3 or (len(shape) == 4 and shape[axis] in (1, None))):
            raise UserError(f"{self.path}: train-ID output {_show(shape)} is not (N, h, w) nor one channel")

    @property
    def metadata(self) -> dict[str, Any]:
        """What a result row records about the graph and how it ran."""
        runner = self.runner
        return {
            "runtime": runner.runtime,
            "runtime_version": runner.version,
            "provider": runner.provider,
            "threads": runner.threads,
            "layout": self.layout,
            "input_size": "dynamic" if self.input_size is None else "{}x{}".format(*self.input_size),
            "stride": None if self.stride is None else "{}x{}".format(*self.stride),
            "output": self.recipe.kind,
            "output_channels": list(self.recipe.channels),
            "graph_recipe": self.recipe.origin,  # not "recipe": a training recipe's name in a row
        }

    def frame_outputs(self, x: np.ndarray, *, stride: tuple[int, int] | None = None) -> np.ndarray:
        """Logits (H, W, 19) or train IDs (H, W) of one normalised frame x (H, W, 3)."""
        if stride is not None and min(stride) < 1:
            raise UserError(f"--stride {stride} must be positive, e.g. 342x342")
        height, width = x.shape[:2]
        if not self.slides or (height, width) == self.input_size:
            return self._window_output(x, (height, width))
        return slide(
            x,
            self.input_size,
            stride or self.stride,
            self._window_output,
            argmax=self.recipe.kind == "train_ids",
            channels=NUM_TRAIN_IDS,
        )

    def _window_output(self, part: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The graph's output for one window, padded to `size` first, in train-ID order at `size`."""
        pad = ((0, size[0] - part.shape[0]), (0, size[1] - part.shape[1]), (0, 0))
        if any(p[1] for p in pad):
            part = np.pad(part, pad)
        tensor = part.transpose(2, 0, 1)[None] if self.layout == "NCHW" else part[None]
        out = np.asarray(self.runner.run(np.ascontiguousarray(tensor)))[0]
        if self.recipe.kind == "train_ids":
            if out.ndim == 3:
                out = out[0] if self.layout == "NCHW" else out[..., 0]
            values = out.astype(np.int64)
            inside = (values >= 0) & (values < len(self._lut))
            labels = np.where(inside, self._lut[np.clip(values, 0, len(self._lut) - 1)], VOID)
            return resize_nearest(labels.astype(np.uint8), size)
        if self.layout == "NCHW":
            out = out.transpose(1, 2, 0)
        if out.shape[-1] <= max(self.recipe.channels):
            raise UserError(
                f"{self.path}: the output has {out.shape[-1]} channels, but output.channels reads channel "
                f"{max(self.recipe.channels)}: fix the recipe"
            )
        logits = np.ascontiguousarray(out[..., list(self.recipe.channels)], dtype=np.float32)
        if self.recipe.input.output_resize == "nearest":
            return resize_nearest(logits, size)
        return resize_bilinear(logits, size)


def _show(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
