"""The sinks' own thread: the model's thread hands each predicted batch over and goes on to the next one.

One thread calls every sink in frame order (so results never reorder), fed through a bounded queue (at
most `depth` batches wait: a slow sink holds the model back instead of filling memory). It also takes the
predictions off the device (`.numpy()`) so the copy overlaps the next forward pass. A sink's error stops the
feeding and is raised in the model's thread at its next `put` or at `close`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_DONE = object()


class SinkFeeder:
    """`put(samples, train_ids, logits)` per batch; `close()` waits for the sinks and re-raises their error.
    `frame(sample, train_ids, logits)` (host arrays of one frame) is what happens to each frame there;
    `seconds` sums the time the thread spent on it."""

    def __init__(self, frame: Callable[[Any, np.ndarray, Any], None], *, depth: int = 2) -> None:
        self._frame = frame
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._work, name="sinks", daemon=True)
        self._thread.start()

    def put(self, samples: Sequence, train_ids: Any, logits: Any | None) -> None:
        self._raise()
        while True:
            try:
                self._queue.put((samples, train_ids, logits), timeout=0.1)
                return
            except queue.Full:
                self._raise()

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for every batch handed in to reach the sinks; raise the first sink error (unless the
        model's thread is already failing: `raise_error=False`)."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        failed = False
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if failed:
                continue  # drain: the model's thread learns of the error at its next put
            began = time.perf_counter()
            try:
                samples, train_ids, logits = item
                ids = np.asarray(train_ids)
                values = None if logits is None else np.asarray(logits)
                for i, sample in enumerate(samples):
                    self._frame(sample, ids[i], None if values is None else values[i])
            except BaseException as exc:  # noqa: BLE001 - handed to the model's thread as it is
                self._error, failed = exc, True
            self.seconds += time.perf_counter() - began
