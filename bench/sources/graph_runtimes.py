"""The two runtimes an exported graph runs on, behind one small interface: ONNX Runtime (`.onnx`) and
OpenVINO (`.onnx`, and its own IR `.xml` + `.bin`). No TensorFlow here.

A runner is made from a file and gives `input_shape` / `output_shape` (ints, None for a dynamic axis),
`output_dtype`, `run(x)` of one array in the graph's layout, and what a result row records: `runtime`,
`version`, `provider`, `threads`.

ONNX Runtime: execution providers in the order given (`--providers cpu,cuda,tensorrt`; CPU by default),
each one refused when this installation lacks it. OpenVINO: the device (CPU by default), inference precision
held at f32 (on a CPU with AVX512-BF16 or AMX its default is bf16, which would change the logits), a
dynamic input reshaped and compiled once per input size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.errors import UserError

RUNTIMES = ("onnxruntime", "openvino")
PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


def default_threads() -> int:
    return len(os.sched_getaffinity(0))


class OnnxRuntimeRunner:
    """An `onnxruntime.InferenceSession` of a checked `.onnx` file (bench/sources/onnx_checks.py)."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, *, providers: Sequence[str] | None, threads: int | None):
        import onnxruntime as ort

        self.version = ort.__version__
        available = ort.get_available_providers()
        wanted = [PROVIDER_NAMES.get(p.lower(), p) for p in (providers or ["cpu"])]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise UserError(
                f"--providers {','.join(providers or [])}: {', '.join(missing)} is not in this onnxruntime "
                f"{self.version} (available: {', '.join(available)}); CUDA and TensorRT need onnxruntime-gpu"
            )
        self.threads = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=wanted)
        except Exception as exc:  # onnxruntime's Fail / InvalidGraph / NotImplemented
            raise UserError(f"onnxruntime cannot load {path}: {str(exc).strip().splitlines()[0]}") from None
        self.provider = self.session.get_providers()[0]
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        _one_in_one_out(path, len(inputs), len(outputs))
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_shape = _dims(inputs[0].shape)
        self.output_shape = _dims(outputs[0].shape)
        self.input_dtype = _ort_dtype(inputs[0].type, path)
        self.output_dtype = _ort_dtype(outputs[0].type, path)

    def run(self, x: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self.output_name], {self.input_name: x.astype(self.input_dtype)})[0]
        except Exception as exc:
            raise UserError(
                f"onnxruntime failed on an input of shape {list(x.shape)}: {str(exc).strip().splitlines()[0]}"
            ) from None


class OpenVinoRunner:
    """An OpenVINO compiled model of a `.onnx` file or an IR `.xml` (its `.bin` beside it)."""

    runtime = "openvino"

    def __init__(self, path: Path, *, providers: Sequence[str] | None, threads: int | None):
        import openvino as ov

        self.version = ov.get_version().split("-")[0]
        core = ov.Core()
        devices = [p.upper() for p in (providers or ["CPU"])]
        if len(devices) != 1 or devices[0] not in core.available_devices:
            raise UserError(
                f"--providers {','.join(providers or [])}: OpenVINO runs on one device of "
                f"{', '.join(core.available_devices)} (default CPU)"
            )
        self.provider = devices[0]
        self.threads = threads or default_threads()
        try:
            self.model = core.read_model(str(path))
        except Exception as exc:
            raise UserError(f"OpenVINO cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
        _one_in_one_out(path, len(self.model.inputs), len(self.model.outputs))
        self._core, self._ov, self._path = core, ov, path
        self.input_shape = _partial(self.model.inputs[0].get_partial_shape())
        self.output_shape = _partial(self.model.outputs[0].get_partial_shape())
        self.input_dtype = np.dtype(self.model.inputs[0].get_element_type().to_dtype())
        self.output_dtype = np.dtype(self.model.outputs[0].get_element_type().to_dtype())
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _request(self, shape: tuple[int, ...]):
        if shape not in self._compiled:
            model = self.model
            if None in self.input_shape:
                model = model.clone()
                model.reshape({model.inputs[0]: self._ov.PartialShape(list(shape))})
            config = {
                "INFERENCE_NUM_THREADS": self.threads,
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY",
            }
            if self.provider != "CPU":
                config = {"PERFORMANCE_HINT": "LATENCY"}
            try:
                compiled = self._core.compile_model(model, self.provider, config)
            except Exception as exc:
                raise UserError(
                    f"OpenVINO cannot compile {self._path} for input {list(shape)}: "
                    f"{str(exc).strip().splitlines()[0]}"
                ) from None
            self._compiled[shape] = compiled.create_infer_request()
        return self._compiled[shape]

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x.astype(self.input_dtype))
        request = self._request(tuple(x.shape))
        try:
            request.infer({0: x})
        except Exception as exc:
            raise UserError(
                f"OpenVINO failed on an input of shape {list(x.shape)}: {str(exc).strip().splitlines()[0]}"
            ) from None
        return np.array(request.get_output_tensor(0).data)


def make_runner(runtime: str, path: Path, *, providers: Sequence[str] | None, threads: int | None):
    if runtime == "onnxruntime":
        return OnnxRuntimeRunner(path, providers=providers, threads=threads)
    if runtime == "openvino":
        return OpenVinoRunner(path, providers=providers, threads=threads)
    raise UserError(f"--runtime {runtime}: an exported graph runs on one of {', '.join(RUNTIMES)}")


def _one_in_one_out(path: Path, inputs: int, outputs: int) -> None:
    if inputs != 1 or outputs != 1:
        raise UserError(
            f"{path} has {inputs} input(s) and {outputs} output(s): a segmentation model for this harness "
            f"takes one image and returns one map (export the logits or labels output alone)"
        )


def _dims(shape: Sequence[Any]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def _partial(shape: Any) -> tuple[int | None, ...]:
    if shape.rank.is_dynamic:
        return ()
    return tuple(d.get_length() if d.is_static else None for d in shape)


def _ort_dtype(text: str, path: Path) -> np.dtype:
    names = {"float": "float32", "double": "float64", "float16": "float16"}
    inner = text.removeprefix("tensor(").removesuffix(")")
    try:
        return np.dtype(names.get(inner, inner))
    except TypeError:
        raise UserError(f"{path}: tensor type {text} is not one this harness can feed or read") from None
