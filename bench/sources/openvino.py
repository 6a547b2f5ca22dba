"""OpenVINO IR (`MODEL.xml` + `MODEL.bin`) as a model source, run by OpenVINO.

The recipe is found as for ONNX (bench/sources/graph_recipe.py): `--recipe`, `MODEL.xml.json` beside the
file, the `cityscapes_bench` entry of the model's `rt_info`. Before OpenVINO reads the IR, the `.bin`
must exist and hold every constant the `.xml` declares (offset + size within the file), and no layer may
come from an extension library (the harness loads none).
"""

from __future__ import annotations

from pathlib import Path

from bench.sources.opened import OpenedModel, Source, SourceOptions
from data.errors import UserError

IR_ROOT = "net"


def is_openvino_ir(name: str) -> bool:
    return name.lower().endswith(".xml")


def check_ir(xml: Path) -> Path:
    """The `.bin` of the IR `xml`, after checking the constants the `.xml` declares fit inside it."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(xml).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise UserError(f"{xml} is not a readable OpenVINO IR ({exc}): is the file complete?") from None
    if root.tag != IR_ROOT or root.find("layers") is None:
        raise UserError(f"{xml} is not an OpenVINO IR: no <net> with <layers>")
    weights = xml.with_suffix(".bin")
    size = weights.stat().st_size if weights.is_file() else None
    for layer in root.iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("size") is None:
            continue
        if size is None:
            raise UserError(f"{xml} needs its weights {weights} beside it: absent")
        try:
            offset, length = int(data.get("offset", 0)), int(data.get("size"))
        except ValueError:
            raise UserError(f"{xml}: layer {layer.get('name')!r} has a malformed offset or size") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise UserError(
                f"{xml}: constant {layer.get('name')!r} declares {length} bytes at offset {offset} of "
                f"{weights}, which holds {size}: the weights file is truncated or not this model's"
            )
    return weights


def open_ir_file(
    name: str, *, precision: str, fold_bn: bool, cache, options: SourceOptions | None = None
) -> OpenedModel:
    from bench.sources.graph_recipe import METADATA_KEY, find_recipe
    from bench.sources.graph_runtimes import OpenVinoRunner
    from bench.sources.onnx import open_graph

    options = options or SourceOptions()
    path = Path(name)
    if not path.is_file():
        raise UserError(f"OpenVINO IR {path} does not exist: pass the model's .xml (its .bin beside it)")
    if options.runtime not in (None, "openvino"):
        raise UserError(f"{path} is an OpenVINO IR: it runs on --runtime openvino only")
    check_ir(path)
    runner = OpenVinoRunner(path, providers=options.providers, threads=options.threads)
    embedded = None
    if runner.model.has_rt_info(METADATA_KEY):
        embedded = runner.model.get_rt_info(METADATA_KEY).astype(str)
    recipe = find_recipe(path, options.recipe, embedded)
    return open_graph(path, recipe, runner, precision=precision)


SOURCE = Source("openvino", is_openvino_ir, open_ir_file, takes_options=True)
