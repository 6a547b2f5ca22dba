"""Published Cityscapes weights by name, in the style of torchvision's weights enums.

Each entry says where the file is (URL, file name), how to check it (SHA-256), under which licence it is
published, which architecture and options it fills, how its input must be prepared, and which reference
rows (`results/reference/*.csv`, by id) hold its published mIoU, split and protocol. The published numbers
live only in those tables; mmsegmentation's PSPNet entries are derived whole from the rows that name a
`checkpoint_url` (bench/sources/convert/published.py), so their URLs and numbers are never retyped here.
SHA-256 and sizes of the other files were computed from the files at the commits their URLs name. No
TensorFlow here: `bench weights` lists the table without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.common.paths import REFERENCE_DIR
from data.errors import UserError

MMSEG_LICENCE = "Apache-2.0"
MMSEG_RECIPE = "RGB, (x - ImageNet mean) / std on 0..255; the whole 2048x1024 frame"
_ESPNET = "https://github.com/sacmehta/ESPNet/raw/f35e34e4fa03b0bfb97464263ae38c6236ddb5c1/pretrained/decoder"
_EDGENETS = "https://github.com/sacmehta/EdgeNets/raw/{commit}/model/segmentation/model_zoo/espnetv2"
_CORAL = "https://github.com/google-coral/test_data/raw/104342d2d3480b3e66203073dac24f4e2dbb4c41"
ESPNET_RECIPE = (
    "BGR, (x - mean) / std per channel on 0..255 (the authors' statistics), then resized to 1024x512 "
    "(bilinear, no antialias), then / 255; 20 logits at 1024x512 (channel 19: background, not scored), "
    "brought back to 2048x1024"
)
ESPNETV2_RECIPE = (
    "RGB resized to 1024x512 (PIL bilinear, antialiased), / 255, (x - ImageNet mean) / std; 20 logits "
    "at 1024x512 (channel 19: background, not scored), brought back to 2048x1024"
)
DEEPLAB_RECIPE = (
    "uint8 RGB as read (the model computes (x - 128) / 128 itself); 513x513 windows slid over the full "
    "2048x1024 frame, 1/3 overlap; output: the arg-max, 19 train IDs"
)


@dataclass(frozen=True)
class Weights:
    """One published weights file. `sha256` is the full hex digest when known; mmsegmentation's files are
    checked by the 8 hex digits of SHA-256 their names end in (`sha256_prefix`)."""

    name: str
    url: str
    licence: str
    model: str  # registry model, or "litert" for a .tflite run as it is
    options: Mapping[str, Any] = field(default_factory=dict)
    input_recipe: str = ""
    references: tuple[str, ...] = ()  # reference row ids, results/reference/*.csv
    sha256: str | None = None
    size: int | None = None  # bytes
    source: str = ""  # repository @ commit, path: where the file was published

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def runtime(self) -> str:
        return "litert" if self.model == "litert" else "tensorflow"

    @property
    def digest(self) -> str | None:
        """What a download is checked against: the full SHA-256, else the prefix its file name ends in."""
        if self.sha256:
            return self.sha256
        match = re.search(r"-([0-9a-f]{8})\.pth$", self.file_name)
        return match[1] if match else None


def _espnet(q: int, sha256: str, size: int, references: tuple[str, ...] = ()) -> Weights:
    return Weights(
        name=f"espnet_p2-q{q}_cityscapes-1024x512",
        url=f"{_ESPNET}/espnet_p_2_q_{q}.pth",
        licence="MIT",
        model="espnet",
        options={"p": 2, "q": q},
        input_recipe=ESPNET_RECIPE,
        references=references,
        sha256=sha256,
        size=size,
        source=f"sacmehta/ESPNet @ f35e34e, pretrained/decoder/espnet_p_2_q_{q}.pth",
    )


def _espnetv2(s: str, commit: str, sha256: str, size: int, references: tuple[str, ...]) -> Weights:
    file = f"espnetv2_s_{s}_city_1024x512.pth"
    return Weights(
        name=f"espnetv2_s{s}_cityscapes-1024x512",
        url=f"{_EDGENETS.format(commit=commit)}/{file}",
        licence="MIT",
        model="espnetv2",
        options={"s": float(s)},
        input_recipe=ESPNETV2_RECIPE,
        references=references,
        sha256=sha256,
        size=size,
        source=f"sacmehta/EdgeNets @ {commit[:7]}, model/segmentation/model_zoo/espnetv2/{file}",
    )


_V2_2019_06_07 = "5976d678ee754b846d09485f2fbd059e6f30883b"
_V2_2019_06_15 = "5de7b80b17cdb9328a939d10638e9782f2854f77"

OTHERS: tuple[Weights, ...] = (
    _espnet(
        8,
        "343b0e77e8545d36113c4f3efbf1ee349256f25c97c9f9d5ddefe45f2f49763e",
        1501621,
        ("espnet_p2-q8_cityscapes-1024x512/test",),
    ),
    _espnet(5, "0378be45080ca5edfc416e9ba06b04e74ec5e2ec4baf56597f25a894a8593942", 1104612),
    _espnet(3, "8f3eb198fb15e5da7fa8d258d5f0fc4a4213e1124f415f6fc54d2772d585a7fc", 840008),
    _espnetv2(
        "2.0",
        _V2_2019_06_07,
        "a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8",
        3376094,
        ("espnetv2_s2.0_cityscapes-1024x512/val", "espnetv2_s2.0_cityscapes-1024x512/test"),
    ),
    _espnetv2(
        "1.5",
        _V2_2019_06_15,
        "0dbbda9126583d62f73dfdc28a59a30ab4564094ee6d28428b897a4e36c466b4",
        2068779,
        ("espnetv2_s1.5_cityscapes-1024x512/val",),
    ),
    _espnetv2(
        "1.0",
        _V2_2019_06_15,
        "0918c833fed889e32901ce739b1784fdd2b79f95a9aea199a469ca3394dd7a14",
        1107690,
        ("espnetv2_s1.0_cityscapes-1024x512/val",),
    ),
    _espnetv2(
        "0.5",
        _V2_2019_06_15,
        "9412a86a30f137540ef945d08da3cb7191448956c56c41a64210dab443a9f65f",
        469319,
        ("espnetv2_s0.5_cityscapes-1024x512/val",),
    ),
    Weights(
        name="deeplab_edgetpu-slim_cityscapes-513x513-int8",
        url=f"{_CORAL}/deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
        licence="Apache-2.0",
        model="litert",
        input_recipe=DEEPLAB_RECIPE,
        references=("deeplab_edgetpu-slim_cityscapes/val-os32",),  # its float original's number
        sha256="322fe29945cb1693f426952f2a330ab67ea5678545ddee6f2548e0cfd0ca03e5",
        size=2157328,
        source="google-coral/test_data @ 104342d, deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite",
    ),
)


def _mmseg(reference_dir: str | os.PathLike) -> list[Weights]:
    """mmsegmentation's PSPNet entries, from the reference rows that name their checkpoint_url."""
    from bench.sources.convert.published import checkpoints

    found = []
    for entry in checkpoints(reference_dir):
        ids = tuple(entry.references.values())
        name = ids[0].split("/")[0] if ids else entry.file_name.removesuffix(".pth")
        depth = re.search(r"_r(\d+)-d8", entry.config or entry.file_name)
        found.append(
            Weights(
                name=name,
                url=entry.url,
                licence=MMSEG_LICENCE,
                model="pspnet",
                options={"depth": int(depth[1])} if depth else {},
                input_recipe=MMSEG_RECIPE,
                references=ids,
                source=f"open-mmlab/mmsegmentation, {entry.config}",
            )
        )
    return found


def table(reference_dir: str | os.PathLike = REFERENCE_DIR) -> list[Weights]:
    """Every published weights entry: mmsegmentation's PSPNets, then the others."""
    return [*_mmseg(reference_dir), *OTHERS]


def get(name: str, reference_dir: str | os.PathLike = REFERENCE_DIR) -> Weights:
    """The entry called `name` (or whose file is called so), or a UserError listing the names."""
    entries = table(reference_dir)
    for entry in entries:
        if name in (entry.name, entry.file_name):
            return entry
    names = ", ".join(e.name for e in entries)
    raise UserError(f"unknown weights {name!r}: `python -m bench weights` lists them ({names})")


def by_sha256(digest: str, reference_dir: str | os.PathLike = REFERENCE_DIR) -> Weights | None:
    """The entry a file's SHA-256 (hex) identifies, None when it is none of them."""
    for entry in table(reference_dir):
        if entry.digest and digest.startswith(entry.digest):
            return entry
    return None


def of_metadata(
    metadata: Mapping[str, Any], reference_dir: str | os.PathLike = REFERENCE_DIR
) -> Weights | None:
    """The published weights a checkpoint's metadata comes from: named (a LiteRT file run as it is), else
    identified by the SHA-256 of the file it was converted from (an ESPNet .pth); None for neither."""
    if metadata.get("weights"):
        return get(str(metadata["weights"]), reference_dir)
    source = metadata.get("source")
    if isinstance(source, Mapping) and source.get("sha256"):
        return by_sha256(str(source["sha256"]), reference_dir)
    return None


def reference_rows(reference_dir: str | os.PathLike = REFERENCE_DIR) -> dict[str, dict[str, Any]]:
    """Every reference row that has an id, by id (one read of the tables, for `published`)."""
    from bench.report import references

    frame = references.load_all(reference_dir)
    if "id" not in frame.columns:
        return {}
    return {row["id"]: row for row in frame.to_dict("records") if isinstance(row["id"], str) and row["id"]}


def published(entry: Weights, rows: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The reference rows of an entry (id, method, split, protocol, test_mode, miou, url), from `rows`
    (`reference_rows()`, read here when not given); an id no table holds is a UserError."""
    rows = reference_rows() if rows is None else rows
    found = []
    for row_id in entry.references:
        if row_id not in rows:
            raise UserError(
                f"weights {entry.name}: no reference row has the id {row_id!r} (results/reference/)"
            )
        row = rows[row_id]
        found.append(
            {k: row.get(k) for k in ("id", "method", "split", "protocol", "test_mode", "miou", "url")}
        )
    return found


def reference_id(
    entry: Weights,
    split: str,
    *,
    mode: str = "whole",
    flip: bool = False,
    scales: tuple[float, ...] = (1.0,),
    rows: Mapping[str, Mapping[str, Any]] | None = None,
) -> str | None:
    """The id of the entry's reference row for `split` under this prediction protocol, None when no row
    of the entry was scored so (another split, or a mode the authors did not publish)."""
    from bench.sources.convert.published import test_mode

    wanted = test_mode(mode, flip, scales)
    for row in published(entry, rows):
        row_mode = row["test_mode"] if isinstance(row["test_mode"], str) and row["test_mode"] else "whole"
        if row["split"] == split and row_mode == wanted:
            return row["id"]
    return None
