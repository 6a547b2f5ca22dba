"""`python -m bench zoo [--readme README.md]`: the README's "Model zoo" table, measured.

Every real model the harness runs from the shared folder (`../shared` or $CITYSCAPES_BENCH_SHARED: the
published `.pth` ESPNet / ESPNetv2, the int8 `.tflite` DeepLab, the ONNX exports of the authors' code) is
opened by `open_checkpoint` on each runtime it runs on and predicts the shared real frame through the one
prediction loop (as `bench predict` does, from the PNG): its parameters, its published mIoU (the sources'
README figures), the share of pixels whose arg-max agrees with what the authors' own code computes on that
frame (their train-ID arg-max over channels 0..18, at full resolution) and images/s end to end on this CPU
(the loop's figure: the frame read, resized, predicted and brought back to 1024x2048; warm-up excluded).
A file absent here is a row that says so (and where it comes from), never a guessed number.
`--readme` rewrites the table between the marker comments of README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common.paths import PROJECT_ROOT
from data.errors import UserError

SHARED_ENV = "CITYSCAPES_BENCH_SHARED"
FRAME = "frankfurt_000000_000294"
IMAGE = f"fixtures/real-frame/leftImg8bit/val/frankfurt/{FRAME}_leftImg8bit.png"
BEGIN, END = "<!-- model-zoo:begin (bench zoo --readme) -->", "<!-- model-zoo:end -->"

RECIPES = "weights/onnx/recipes.json"  # the shared ONNX files' facts, with the source line of each


@dataclass(frozen=True)
class Entry:
    name: str
    file: str  # relative to the shared folder
    published: str  # the source's own Cityscapes mIoU
    runtimes: tuple[str | None, ...]  # None: the source's own (TensorFlow for .pth, LiteRT for .tflite)
    reference: str | None = None  # the authors' outputs on the frame: folder relative to the shared folder


ZOO = (
    Entry("ESPNet p=2 q=8", "weights/espnet_p_2_q_8.pth", "60.3 test", (None,),
          "fixtures/real-frame/reference/espnet_p_2_q_8"),
    Entry("ESPNetv2 s=2.0", "weights/espnetv2_s_2.0_city_1024x512.pth", "66.4 val", (None,),
          "fixtures/real-frame/reference/espnetv2_s_2.0_city_1024x512"),
    Entry("ESPNetv2 s=0.5", "weights/espnetv2_s_0.5_city_1024x512.pth", "53.9 val", (None,)),
    Entry("EdgeTPU-DeepLab-slim (int8 .tflite)",
          "weights/deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite", "70.0 val (float original)",
          (None,)),
    Entry("C3NetV2 (ONNX)", "weights/onnx/C3NetV2.onnx", "66.28 val", ("onnxruntime", "openvino"),
          "weights/onnx/reference/C3NetV2"),
    Entry("C3NetV2 + arg-max (ONNX)", "weights/onnx/C3NetV2_argmax.onnx", "66.28 val",
          ("onnxruntime", "openvino"), "weights/onnx/reference/C3NetV2"),
    Entry("ESPNetv2 s=2.0 (ONNX, dynamic)", "weights/onnx/espnetv2_s_2.0_dynamic.onnx", "66.4 val",
          ("onnxruntime", "openvino"), "weights/onnx/reference/espnetv2_s_2.0"),
)  # fmt: skip


def shared_dir(given: str | None = None) -> Path:
    return Path(given or os.environ.get(SHARED_ENV) or PROJECT_ROOT.parent / "shared")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shared", default=None, help=f"the shared folder (default ${SHARED_ENV}, ../shared)"
    )
    parser.add_argument("--frames", type=int, default=3, help="timed predictions of the frame (default 3)")
    parser.add_argument("--only", default=None, help="models whose name contains this text only")
    parser.add_argument("--readme", default=None, help="rewrite the table between the markers of this file")
    parser.add_argument("--json", default=None, help="also write the measurements to this JSON file")


def recipe_from_facts(facts: dict) -> dict:
    """Our recipe format (bench/sources/graph_recipe.py), from one entry of the shared recipes.json: what the
    authors' preprocessing does, channels 0..18 scored (their 20th is background), labels brought up nearest
    as both authors do."""
    pre, resize = facts["preprocessing"], facts["preprocessing"]["resize"]
    width, height = resize["size_wh"]
    integer = facts["output"]["dtype"].startswith("int")
    return {
        "input": {
            "mean": pre["mean"],
            "std": pre["std"],
            "channel_order": pre["channel_order"],
            "value_range": pre["value_range"],
            "divisor": pre["divisor"],
            "size": [height, width],
            "order": pre["order"].split(":")[0],
            "resize": "pil-bilinear" if resize["antialias"] else "bilinear",
            "output_resize": "nearest",
        },
        "output": {"kind": "train_ids" if integer else "logits", "channels": list(range(19))},
        "layout": facts["input"]["layout"],
    }


def their_train_ids(folder: Path) -> np.ndarray:
    """The authors' arg-max over channels 0..18 of their logits on the frame, repeated to 1024x2048 (their
    label maps are half size; they bring them up by nearest)."""
    logits = np.load(folder / f"{FRAME}_logits.npz")["logits"]  # float16 (C, 512, 1024)
    return logits[:19].argmax(0).repeat(2, axis=0).repeat(2, axis=1)


def params_of(path: Path, opened) -> int | None:
    if opened.keras is not None:
        return int(opened.keras.count_params())
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer))
    return None  # a LiteRT file does not say which tensors are weights


class _Keep:
    def __init__(self) -> None:
        self.train_ids: np.ndarray | None = None

    def reset(self) -> None:
        pass

    def process(self, sample, train_ids, logits) -> None:
        self.train_ids = np.asarray(train_ids)

    def evaluate(self):
        return None


def frame_dataset(folder: Path, image: Path, copies: int) -> Path:
    """A Cityscapes root holding the shared frame `copies` times (blank GT: nothing is scored)."""
    from PIL import Image

    for sub in ("leftImg8bit/val/frankfurt", "gtFine/val/frankfurt"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    blank = Image.fromarray(np.zeros((1024, 2048), np.uint8))
    for i in range(copies):
        stem = f"frankfurt_000000_{294 + i:06d}"
        (folder / f"leftImg8bit/val/frankfurt/{stem}_leftImg8bit.png").symlink_to(image)
        blank.save(folder / f"gtFine/val/frankfurt/{stem}_gtFine_labelIds.png")
    return folder


def measure(entry: Entry, shared: Path, dataset: Path, work: Path) -> list[dict[str, Any]]:
    """One row per runtime of `entry`; a row with `skipped` where a file is absent."""
    from bench.inference.loop import predict_frames
    from bench.sources.opened import SourceOptions
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples

    path = shared / entry.file
    base = {"model": entry.name, "file": entry.file, "published_miou": entry.published}
    if not path.is_file():
        return [
            {**base, "skipped": f"{path} is absent (see shared/weights/README.md for where it comes from)"}
        ]
    rows = []
    theirs = None
    if entry.reference and (shared / entry.reference / f"{FRAME}_logits.npz").is_file():
        theirs = their_train_ids(shared / entry.reference)
    for runtime in entry.runtimes:
        options = None
        if path.suffix == ".onnx":  # the graph does not say its recipe: the shared facts do
            recipe = work / f"{path.name}.{runtime}.json"
            facts = json.loads((shared / RECIPES).read_text())[path.name]
            recipe.write_text(json.dumps(recipe_from_facts(facts)))
            options = SourceOptions(runtime=runtime, recipe=str(recipe))
        opened = open_checkpoint(path, options=options)
        keep = _Keep()
        done = predict_frames(
            opened, list_samples(dataset, "val", require_images=True), sinks=(keep,), progress=False
        )
        agreement = None
        if theirs is not None and keep.train_ids is not None and keep.train_ids.shape == theirs.shape:
            agreement = 100.0 * float(np.mean(keep.train_ids == theirs))
        rows.append(
            {
                **base,
                "runtime": done.stats.get("runtime") or runtime or "tensorflow",
                "params": params_of(path, opened),
                "agreement_with_authors": agreement,
                "images_per_s": done.stats["images_per_s"],
                "threads": done.stats.get("threads"),
            }
        )
    return rows


def table(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        "| model | file (shared/) | params | published mIoU | runtime | agrees with the authors | images/s |",
        "| --- | --- | ---: | --- | --- | ---: | ---: |",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(
                f"| {r['model']} | `{r['file']}` | - | {r['published_miou']} | - | - | "
                f"skipped: {r['skipped']} |"
            )
            continue
        agree = "-" if r["agreement_with_authors"] is None else f"{r['agreement_with_authors']:.2f}%"
        params = "-" if r["params"] is None else f"{r['params'] / 1e6:.2f} M"
        lines.append(
            f"| {r['model']} | `{r['file']}` | {params} | {r['published_miou']} | {r['runtime']} | {agree} | "
            f"{r['images_per_s']:.2f} |"
        )
    return "\n".join([*lines, "", machine]) + "\n"


def replace_between_markers(text: str, body: str, origin: str) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise UserError(f"{origin} needs one {BEGIN!r} line and one {END!r} line after it, around the table")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def machine_line(frames: int) -> str:
    from bench.common.device import cpu_model

    return (
        f"Measured by `python -m bench zoo --readme README.md` on {cpu_model()}, "
        f"{len(os.sched_getaffinity(0))} "
        f"threads: {frames} timed predictions of the shared frame {FRAME} (1024x2048) each, end to end; "
        "agreement: the share of its pixels whose train ID equals the authors' arg-max over channels 0..18."
    )


def run(args: argparse.Namespace) -> int:
    from bench.common.atomic import check_writable, write_text
    from bench.common.tensorflow_import import import_tensorflow

    if args.frames < 1:
        raise UserError(f"--frames {args.frames} must be at least 1")
    readme = Path(args.readme) if args.readme else None
    if readme is not None:
        if not readme.is_file():
            raise UserError(f"--readme {readme} does not exist: point at the README.md to update")
        replace_between_markers(readme.read_text(), "", f"--readme {readme}")
    if args.json:
        check_writable(args.json, "--json", folder=False)
    shared = shared_dir(args.shared)
    entries = [e for e in ZOO if args.only is None or args.only.lower() in e.name.lower()]
    if not entries:
        raise UserError(f"--only {args.only!r} matches none of: {', '.join(e.name for e in ZOO)}")
    image = shared / IMAGE
    rows: list[dict[str, Any]] = []
    if not image.is_file():
        reason = (
            f"{image} is absent: set ${SHARED_ENV} or --shared to the shared folder (see README: Real data)"
        )
        rows = [
            {"model": e.name, "file": e.file, "published_miou": e.published, "skipped": reason}
            for e in entries
        ]
    else:
        import_tensorflow()
        with tempfile.TemporaryDirectory(prefix="bench-zoo-") as tmp:
            dataset = frame_dataset(Path(tmp) / "data", image, args.frames)
            for entry in entries:
                print(f"{entry.name} ...", flush=True)
                rows += measure(entry, shared, dataset, Path(tmp))
    text = table(rows, machine_line(args.frames))
    print(text, end="")
    for r in rows:
        if "skipped" in r:
            print(f"skipped {r['model']}: {r['skipped']}")
    if readme is not None:
        print(f"wrote {write_text(readme, replace_between_markers(readme.read_text(), text, str(readme)))}")
    if args.json:
        print(f"wrote {write_text(args.json, json.dumps(rows, indent=2) + chr(10))}")
    return 0
