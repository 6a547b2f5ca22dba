"""What a predicted frame becomes: each output of the prediction loop is a sink (detectron2's shape).

The loop (bench/inference/loop.py) calls `reset()` once, `process(sample, train_ids, logits)` for every frame
in order, and `evaluate()` at the end; what `evaluate` returns is the sink's result (files written, scores).
`train_ids` is (H, W) uint8 train IDs (0..18) at the frame's full resolution, `logits` (H, W, C) float32 in
train-ID order at that resolution, or None for a model that gives only its arg-max. The scoring sink is
`bench.evaluation.streaming.StreamingEvaluator`; a submission zip is `bench.submission.writer.ZipSink`.
Sinks write into folders their caller prepared (bench/inference/predict.py `output_folders`), never create
them behind its back.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.common.atomic import write_bytes
from data.cityscapes import Sample


class Sink(Protocol):
    """`needs_logits` (a class attribute, True when absent): whether `process` reads `logits`; when no sink
    of a run does, the loop keeps the logits on the device and hands `logits=None`."""

    def reset(self) -> None: ...

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None: ...

    def evaluate(self) -> Any: ...


def png_bytes(array: np.ndarray) -> bytes:
    """A (H, W) uint8 array as the bytes of a single-channel 8-bit PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class _FileSink:
    """Counts what it wrote; `evaluate()` returns {what: count}."""

    what = "files"
    needs_logits = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.written = 0

    def evaluate(self) -> dict[str, int]:
        return {self.what: self.written}


class LabelPngs(_FileSink):
    """`FOLDER/{key}_leftImg8bit.png`, single-channel label IDs (what cityscapesScripts and `bench evaluate`
    read); only the frames of `keys` when given."""

    what = "label_pngs"

    def __init__(self, folder: str | Path, keys=None) -> None:
        self.folder = Path(folder)
        self.keys = None if keys is None else frozenset(keys)
        super().__init__()

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None:
        from data.labels import to_label_ids

        if self.keys is None or sample.key in self.keys:
            write_bytes(self.folder / f"{sample.key}_leftImg8bit.png", png_bytes(to_label_ids(train_ids)))
            self.written += 1


class ColourPngs(_FileSink):
    """`FOLDER/color_{key}.png` in the Cityscapes palette, for viewing; the prefix keeps the files from being
    matched as predictions (cityscapesScripts takes every PNG whose name starts with the frame's key)."""

    what = "colour_pngs"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        super().__init__()

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None:
        from data.labels import colorize

        write_bytes(self.folder / f"color_{sample.key}.png", png_bytes(colorize(train_ids)))
        self.written += 1


class LogitsFiles(_FileSink):
    """`FOLDER/{key}_logits.npy`: float32 (H, W, classes in train-ID order), for parity checks, ensembles."""

    what = "logits_files"
    needs_logits = True

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        super().__init__()

    def process(self, sample: Sample, train_ids: np.ndarray, logits: np.ndarray | None) -> None:
        if logits is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(logits, np.float32))
        write_bytes(self.folder / f"{sample.key}_logits.npy", buffer.getvalue())
        self.written += 1
