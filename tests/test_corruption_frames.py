"""Corrupted frames made in worker processes: in order, a bounded number ahead, equal to the inline ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.evaluation.pool import bounded_map
from bench.robustness.frames import FrameTask, frames, make_frame
from data.corruptions import corrupt, seed_for

pytest.importorskip("imagecorruptions")


def started(item: tuple[str, int]) -> int:
    """Mark item `i` as started (a file in the folder), then return it."""
    folder, i = item
    Path(folder, str(i)).touch()
    return i


def test_bounded_map_keeps_the_order_and_never_runs_more_than_ahead_past_the_consumer(tmp_path):
    items = [(str(tmp_path), i) for i in range(12)]
    taken = 0
    for i in bounded_map(started, items, workers=2, ahead=3):
        assert i == taken
        taken += 1
        time.sleep(0.05)  # a slow consumer: the workers must wait, not run ahead
        assert len(os.listdir(tmp_path)) <= taken + 3
    assert taken == 12


def test_frames_from_worker_processes_equal_the_inline_corruption_and_are_saved_when_asked(
    tiny_dataset, tmp_path
):
    images = sorted((tiny_dataset / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
    tasks = [
        FrameTask(
            str(path),
            corruption,
            3,
            seed_for(path.name, corruption, 3),
            str(tmp_path / f"{i}-{corruption}.png"),
        )
        for i, path in enumerate(images)
        for corruption in ("snow", "speckle_noise")
    ]
    made = list(frames(tasks, workers=2, ahead=2))
    assert [item for item, _ in made] == tasks
    for task, frame in made:
        original = np.asarray(Image.open(task.image).convert("RGB"))
        expected = corrupt(original, task.corruption, task.severity, task.seed)
        assert np.array_equal(frame, expected)
        assert np.array_equal(np.asarray(Image.open(task.save)), expected)
    clean = make_frame(FrameTask(str(images[0]), "clean", 0, 0))
    assert np.array_equal(clean, np.asarray(Image.open(images[0]).convert("RGB")))
