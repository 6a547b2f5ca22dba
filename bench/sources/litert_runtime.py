"""LiteRT (`.tflite`) files as a model source: one full-resolution frame in, train IDs (and logits) out.

Everything is read from the interpreter: the input size, dtype and quantisation, and whether the output
is logits (float, or quantised and dequantised here) or already an arg-max (an integer map). Windows of
the model's input size slide over the frame (1/3 overlap by default, the last one flush with the border,
as `models.inference_modes.slide_windows` places them); a frame smaller than the input is padded with the
value the network reads as 0 (the input's zero point; 0.0 for a float input). Logits of overlapping
windows are averaged; an arg-max output has nothing to average, so each pixel takes the window whose
centre is nearest (the prediction with the most context). A model with a dynamic input size is run on the
whole frame at once. The windows and resizes are bench/sources/windows.py's, shared with ONNX.

Input recipe: a float input gets `(pixel - mean) / std` of the `InputSpec` given (default: 0..255 RGB as
it is). A quantised input gets that real value quantised with the model's own scale and zero point; with
no spec it gets the pixel bytes as they are (uint8) or shifted by -128 (int8): the convention of quantised
image models, whose input quantisation is their normalisation (TF DeepLab's uint8 input reads
(x - 128) / 128).

Label space: 19 logit channels or arg-max values 0..18 are the Cityscapes train IDs. 20 channels are the
train IDs plus a "background" class trained on ignore pixels (the ESPNet family): the arg-max is taken over
channels 0..18 only, since cityscapesScripts counts a background prediction on a valid pixel as a miss.
An arg-max value outside 0..18 becomes 255 (void: a miss on a valid pixel). Any other channel count is
refused: its classes cannot be mapped to train IDs without knowing what they are.

Runtime: `ai_edge_litert.interpreter.Interpreter` (pinned). Measured on the shared int8 TF DeepLab
(8 windows of 513x513 covering a 1024x2048 frame, 2 threads, XNNPACK): outputs bit-identical to
TensorFlow 2.21's `tf.lite.Interpreter`, the same speed (151-161 ms per window on a loaded 2-core
machine for both), load 21-24 ms against 37-52 ms, and an import of 0.01 s against TensorFlow's 4 s;
`tf.lite.Interpreter` also warns that it is deprecated and scheduled for deletion. No TensorFlow here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench.sources.windows import resize_bilinear, resize_nearest, slide
from data.errors import UserError
from data.normalization import InputSpec

RUNTIME = "litert"
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier, bytes 4..8 of every .tflite file
NUM_TRAIN_IDS = 19
BACKGROUND_CHANNELS = 20  # train IDs + one "background" channel (ESPNet, ESPNetv2)
VOID = 255
RAW_PIXELS = InputSpec(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
DEFAULT_OVERLAP = 1 / 3  # as the project's slide mode (models/inference_modes.py)


def is_litert(path: str | os.PathLike) -> bool:
    """Whether `path` is a file holding a LiteRT flatbuffer (by content, not by its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == TFLITE_IDENTIFIER
    except OSError:
        return False


def _interpreter(path: Path, threads: int | None):
    from ai_edge_litert.interpreter import Interpreter

    threads = threads or len(os.sched_getaffinity(0))
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"cannot load {path} as a LiteRT model ({exc}): is the file complete?") from exc
    return interpreter, threads


def _quantization(detail: dict[str, Any]) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor quantised tensor, None for a float one."""
    scale, zero_point = detail["quantization"]
    return (float(scale), int(zero_point)) if scale else None


class LiteRTModel:
    """A `.tflite` file ready to predict frames; `frame_outputs(image)` is the whole interface the loop needs.

    `input_spec`: how the network's real-valued input is computed from 0..255 RGB (see the module
    docstring for the default). `stride`: window step (H, W), default 2/3 of the input size.
    `threads`: interpreter threads (default: the cores this process may use).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        input_spec: InputSpec | None = None,
        stride: tuple[int, int] | None = None,
        threads: int | None = None,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"LiteRT model {self.path} does not exist: pass a .tflite file")
        if not is_litert(self.path):
            raise UserError(f"{self.path} is not a LiteRT (.tflite) file: no TFL3 flatbuffer identifier")
        self._interpreter, self.threads = _interpreter(self.path, threads)
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(
                f"{self.path} has {len(inputs)} input(s) and {len(outputs)} output(s): a segmentation model "
                f"for this harness takes one image and returns one map (export the logits output alone)"
            )
        self._input, self._output = inputs[0], outputs[0]
        signature = [int(d) for d in self._input.get("shape_signature", self._input["shape"])]
        if len(signature) != 4 or signature[3] != 3 or signature[0] not in (1, -1):
            raise UserError(
                f"{self.path}: input shape {signature} is not one NHWC RGB image (1, H, W, 3): "
                f"channels-first or batched exports are not supported; re-export with a (1, H, W, 3) input"
            )
        self.dynamic = min(signature[1:3]) < 1
        self.input_size = None if self.dynamic else (signature[1], signature[2])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = _quantization(self._input)
        if self.input_dtype.kind in "iu" and self.input_quantization is None:
            raise UserError(f"{self.path}: integer input without quantisation parameters cannot be fed")
        if input_spec is None and self.input_dtype.kind in "iu" and self.input_dtype.itemsize > 1:
            raise UserError(f"{self.path}: input dtype {self.input_dtype} needs an input recipe (InputSpec)")
        self.input_spec = input_spec
        self.output_dtype = np.dtype(self._output["dtype"])
        self.output_quantization = _quantization(self._output)
        self.output_kind, self.num_classes = self._output_kind()
        if stride is not None and min(stride) < 1:
            raise UserError(f"--stride {stride} must be positive, e.g. 342x342")
        if self.input_size is not None and stride is None:
            stride = tuple(math.ceil(c * (1 - DEFAULT_OVERLAP)) for c in self.input_size)
        self.stride = None if self.input_size is None else stride
        self._pad_value = self.input_quantization[1] if self.input_quantization else 0.0

    def _output_kind(self) -> tuple[str, int]:
        shape = [int(d) for d in self._output.get("shape_signature", self._output["shape"])]
        integer = self.output_dtype.kind in "iu" and self.output_quantization is None
        if integer and (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)):
            return "argmax", NUM_TRAIN_IDS
        if not integer and len(shape) == 4 and shape[3] in (NUM_TRAIN_IDS, BACKGROUND_CHANNELS):
            return "logits", shape[3]
        raise UserError(
            f"{self.path}: output {self._output['name']} of shape {shape} ({self.output_dtype}) is neither "
            f"Cityscapes logits (1, h, w, 19 or 20) nor an arg-max map (1, h, w) of train IDs: its classes "
            f"cannot be mapped to the 19 train IDs"
        )

    @property
    def label_space(self) -> str:
        if self.num_classes == BACKGROUND_CHANNELS:
            return "train IDs 0-18 + background (channel 19, excluded from the arg-max)"
        return "train IDs 0-18"

    @property
    def metadata(self) -> dict[str, Any]:
        """What a result row records about the model and how it was run."""
        from importlib.metadata import version

        spec = self.input_spec
        if spec is None:
            spec = RAW_PIXELS if self.input_dtype.kind == "f" else None
        return {
            "runtime": RUNTIME,
            "runtime_version": version("ai-edge-litert"),
            "checkpoint": str(self.path),
            "model": self.path.stem,
            "input_size": "dynamic" if self.input_size is None else "{}x{}".format(*self.input_size),
            "input_dtype": self.input_dtype.name,
            "input_quantization": _describe(self.input_quantization),
            "input_recipe": spec.to_dict() if spec else f"{self.input_dtype.name} pixel bytes as read",
            "output": self.output_kind,
            "output_dtype": self.output_dtype.name,
            "output_quantization": _describe(self.output_quantization),
            "label_space": self.label_space,
            "stride": None if self.stride is None else "{}x{}".format(*self.stride),
            "threads": self.threads,
        }

    def model_input(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB pixels 0..255 (uint8, or whole numbers of another dtype, as a decoder without
        normalisation gives them) -> the network's input tensor values (H, W, 3) in its dtype."""
        image = _pixels(np.asarray(image))
        quant = self.input_quantization
        if quant is not None and self.input_spec is None:  # the pixel bytes, as quantised image models read
            shift = 128 if self.input_dtype == np.int8 else 0
            return (image.astype(np.int16) - shift).astype(self.input_dtype)
        real = _normalize(image, self.input_spec or RAW_PIXELS)
        if quant is None:
            return real.astype(self.input_dtype)
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(real / quant[0]) + quant[1], info.min, info.max).astype(self.input_dtype)

    def invoke(self, window: np.ndarray) -> np.ndarray:
        """Raw network output for one (1, h, w, 3) input tensor, dequantised to float32 when quantised."""
        index = self._input["index"]
        if self.dynamic and tuple(self._interpreter.get_input_details()[0]["shape"]) != window.shape:
            self._interpreter.resize_tensor_input(index, window.shape, strict=True)
            self._interpreter.allocate_tensors()
        self._interpreter.set_tensor(index, np.ascontiguousarray(window))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._interpreter.get_output_details()[0]["index"])[0]
        if self.output_quantization is not None:
            scale, zero_point = self.output_quantization
            out = (out.astype(np.float32) - zero_point) * scale
        return out

    def frame_outputs(
        self, image: np.ndarray, *, stride: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(train IDs (H, W) uint8, logits (H, W, 19) float32 or None for an arg-max model) of one
        full-resolution (H, W, 3) RGB frame (see `model_input`); `stride` overrides the model's."""
        if stride is not None and min(stride) < 1:
            raise UserError(f"--stride {stride} must be positive, e.g. 342x342")
        x = self.model_input(image)
        height, width = x.shape[:2]
        if self.input_size is None:
            return self._finish(self._window_output(x, (height, width)))
        output = slide(
            x,
            self.input_size,
            stride or self.stride,
            self._window_output,
            argmax=self.output_kind == "argmax",
            channels=self.num_classes,
        )
        return self._finish(output)

    def _window_output(self, part: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The network's map of one window, padded to `size` first, at the window's resolution."""
        pad = ((0, size[0] - part.shape[0]), (0, size[1] - part.shape[1]), (0, 0))
        if any(p[1] for p in pad):
            part = np.pad(part, pad, constant_values=self._pad_value)
        out = self.invoke(part[None])
        if self.output_kind == "argmax":
            out = out[..., 0] if out.ndim == 3 else out
            return _train_ids(resize_nearest(out, size))
        return resize_bilinear(out.astype(np.float32), size)

    def _finish(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.output_kind == "argmax":
            return output, None
        logits = np.ascontiguousarray(output[..., :NUM_TRAIN_IDS])
        return np.argmax(logits, axis=-1).astype(np.uint8), logits


def open_litert(path: str | os.PathLike, **options: Any) -> LiteRTModel:
    """The model source of a `.tflite` file (see `LiteRTModel` for the options)."""
    return LiteRTModel(path, **options)


def _pixels(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) frame of 0..255 pixel values as uint8, rounded to the nearest (a frame the loop
    resized for multi-scale holds fractions); values outside 0..255 (a normalised frame) are a UserError."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"frame of shape {image.shape}: expected an (H, W, 3) RGB image")
    if image.dtype == np.uint8:
        return image
    if image.size and (image.min() < -0.5 or image.max() > 255.5):
        raise UserError(
            f"frame values {image.min():g}..{image.max():g} are not pixel values 0..255: a LiteRT model "
            f"takes the frame unnormalised"
        )
    return np.rint(image).astype(np.uint8)


def _describe(quantization: tuple[float, int] | None) -> str | None:
    return None if quantization is None else f"scale {quantization[0]:g}, zero point {quantization[1]}"


def _normalize(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """`data.pipeline.normalize` in numpy (float32), so that a LiteRT run needs no TensorFlow."""
    x = image.astype(np.float32)
    if spec.value_range != 255.0:
        x = x * np.float32(spec.value_range / 255.0)
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    return (x - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)


def _train_ids(values: np.ndarray) -> np.ndarray:
    """Arg-max values as uint8 train IDs; anything outside 0..18 becomes void (255)."""
    values = values.astype(np.int64)
    return np.where((values >= 0) & (values < NUM_TRAIN_IDS), values, VOID).astype(np.uint8)
