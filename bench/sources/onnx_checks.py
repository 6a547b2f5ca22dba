"""An ONNX file is user input: `checked_onnx(path)` reads it and refuses, before any runtime loads it, what
would make a runtime read outside its folder, load foreign code, or read past the bytes the file holds.

Refused, each with a UserError naming the file: a file that does not parse (truncated, not ONNX); external
data whose path is absolute or leaves the model's folder, is missing, or is shorter than its tensors declare;
nodes or opset imports of a custom-op domain (their kernels come from a library the runtime would have to
load: only the standard domains and ONNX Runtime's built-in `com.microsoft` are run); initializers whose
shape declares more bytes than they hold; and whatever onnx's own checker rejects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from data.errors import UserError

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def checked_onnx(path: str | os.PathLike) -> Any:
    """The `onnx.ModelProto` of `path` (its external data not loaded), every check above passed."""
    import onnx

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read ONNX model {path}: {exc}") from None
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise UserError(f"{path} is not a readable ONNX model ({exc}): is the file complete?") from None
    if not model.graph.node and not model.graph.output:
        raise UserError(f"{path} holds no ONNX graph: is the file complete (or an ONNX file at all)?")
    _check_domains(model, path)
    external = False
    for tensor in _initializers(model):
        if _is_external(tensor):
            _check_external(tensor, path)
            external = True
        else:
            _check_size(tensor, path)
    try:  # by path where data lies beside it: the checker then finds it relative to the model's folder
        onnx.checker.check_model(str(path) if external else model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a valid ONNX model: {first}") from None
    return model


def _check_domains(model: Any, path: Path) -> None:
    local = {f.domain for f in model.functions}  # functions defined in the file itself are fine
    used = {op.domain for op in model.opset_import} | {n.domain for n in _nodes(model)}
    custom = sorted(d for d in used - local if d not in STANDARD_DOMAINS)
    if custom:
        raise UserError(
            f"{path} uses custom-op domain(s) {', '.join(custom)}: their kernels would come from a library "
            f"loaded into this process, which the harness does not do; export with standard ONNX operators "
            f"(domains: {', '.join(repr(d) for d in STANDARD_DOMAINS)})"
        )


def _nodes(model: Any):
    """Every node, those of subgraphs (If, Loop, Scan) and local functions included."""
    import onnx

    stack = [model.graph, *[f for f in model.functions]]
    while stack:
        graph = stack.pop()
        for node in graph.node:
            yield node
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    stack.append(attribute.g)
                stack.extend(attribute.graphs)


def _initializers(model: Any):
    import onnx

    yield from model.graph.initializer
    for node in _nodes(model):
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.TENSOR:
                    yield attribute.t


def _is_external(tensor: Any) -> bool:
    import onnx

    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL


def _declared_bytes(tensor: Any) -> int | None:
    """Bytes the tensor's shape and type declare; None for types without a fixed size (strings)."""
    import numpy as np
    import onnx

    if tensor.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    count = int(np.prod([int(d) for d in tensor.dims], dtype=np.int64)) if tensor.dims else 1
    bits = {onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4}.get(tensor.data_type)
    if bits is not None:
        return (count * bits + 7) // 8
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        return None
    return count * itemsize


def _check_size(tensor: Any, path: Path) -> None:
    """An inline tensor holds what its shape declares (raw bytes, or one typed value per element)."""
    import numpy as np

    declared = _declared_bytes(tensor)
    if declared is None or any(d < 0 for d in tensor.dims):
        return
    if tensor.HasField("raw_data"):
        held = len(tensor.raw_data)
    else:
        values = max(
            len(tensor.float_data),
            len(tensor.int32_data),
            len(tensor.int64_data),
            len(tensor.double_data),
            len(tensor.uint64_data),
        )
        count = int(np.prod([int(d) for d in tensor.dims], dtype=np.int64)) if tensor.dims else 1
        if values >= count or (values == 0 and count == 0):
            return
        # complex types hold two values per element, float16/bfloat16/int8.. one int32 each
        held = values * declared // max(count, 1)
    if held < declared:
        raise UserError(
            f"{path}: initializer {tensor.name!r} of shape {list(tensor.dims)} declares {declared} bytes but "
            f"holds {held}: the file is truncated or corrupt; export it again"
        )


def _check_external(tensor: Any, path: Path) -> None:
    """External data stays inside the model's folder, exists, and holds the bytes the tensor declares."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    folder = path.absolute().parent  # where a runtime looks for it, beside the name it was given
    target = (folder / location).resolve()  # a link beside the model that points elsewhere leaves too
    if not location or Path(location).is_absolute() or not target.is_relative_to(folder.resolve()):
        raise UserError(
            f"{path}: initializer {tensor.name!r} reads its data from {location!r}, outside the model's "
            f"folder {folder}: refused (external data must be a file beside the model)"
        )
    if not target.is_file():
        raise UserError(f"{path}: initializer {tensor.name!r} needs its external data file {target}: absent")
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise UserError(f"{path}: initializer {tensor.name!r} has a malformed external-data offset") from None
    size = target.stat().st_size
    declared = _declared_bytes(tensor)
    wanted = declared if length is None else max(length, declared or 0)
    if offset < 0 or (wanted is not None and offset + wanted > size):
        raise UserError(
            f"{path}: initializer {tensor.name!r} declares {wanted} bytes at offset {offset} of {target}, "
            f"which holds {size}: the data file is truncated or not this model's"
        )
