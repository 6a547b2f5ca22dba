"""Corrupted frames, made in worker processes ahead of the model and handed over in order.

A task names a frame's image file, the corruption, severity and seed; the worker decodes the PNG (RGB, as
the prediction pipeline decodes it), corrupts it with data/corruptions.py and returns the uint8 frame,
writing it as a PNG too when the sweep saves corrupted frames (`--save-corrupted DIR`: DIR/{corruption}/
{severity}/{city}/{key}_leftImg8bit.png, a Cityscapes-C tree). At most `ahead` frames wait for the model, so
memory stays bounded however far the workers could run ahead. Workers are spawned fresh when the parent
already runs TensorFlow (bench/evaluation/pool.py), so they never inherit its threads.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from data.corruptions import CLEAN, corrupt


@dataclass(frozen=True)
class FrameTask:
    """One frame to make; `save` is the PNG path to write it to, or None."""

    image: str
    corruption: str
    severity: int
    seed: int
    save: str | None = None


def make_frame(task: FrameTask) -> np.ndarray:
    """The (H, W, 3) uint8 RGB frame of `task` (runs in a worker process)."""
    from PIL import Image

    with Image.open(task.image) as img:
        frame = np.asarray(img.convert("RGB"))
    if task.corruption != CLEAN:
        frame = corrupt(frame, task.corruption, task.severity, task.seed)
    if task.save:
        from bench.common.atomic import write_bytes

        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        write_bytes(task.save, buffer.getvalue())
    return frame


def frames(tasks: Iterable, workers: int, ahead: int) -> Iterator[tuple[object, np.ndarray]]:
    """(item, frame) for each item of `tasks` in order; an item is a FrameTask or has one as `.task`."""
    from bench.evaluation.pool import bounded_map

    def job(item):
        return getattr(item, "task", item)

    pending: list = []

    def remember(items):
        for item in items:
            pending.append(item)
            yield job(item)

    with contextlib.closing(bounded_map(make_frame, remember(tasks), workers, ahead)) as made:
        for frame in made:
            yield pending.pop(0), frame
