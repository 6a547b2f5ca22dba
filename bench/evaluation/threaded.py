"""The thread queue behind the prediction loop's scoring sinks (bench/evaluation/streaming.py, sinks.py).

Each frame's numpy work runs in a worker thread while the model computes the next frame (numpy releases the
GIL); results are folded in the order frames were handed in, whatever the thread count, and a frame's
error surfaces at a later call in the caller's thread.
"""

from __future__ import annotations

import collections
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class ThreadedSink:
    """Frames go to `workers` threads (`_submit`); their results are folded in `process` order by `_add`,
    at most `max_pending` (at least `workers`) frames behind; `_busy` sums the seconds of the work."""

    def __init__(self, *, max_pending: int, name: str, workers: int = 1) -> None:
        self.max_pending = max(int(workers), int(max_pending))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending: collections.deque[Future] = collections.deque()
        self._busy = 0.0

    def _clear(self) -> None:
        for future in self._pending:
            future.cancel()
        for future in self._pending:
            if not future.cancelled():
                future.exception()  # wait; its outcome no longer matters
        self._pending.clear()
        self._busy = 0.0

    def _submit(self, fn, *args, **kwargs) -> None:
        def timed():
            began = time.perf_counter()
            return fn(*args, **kwargs), time.perf_counter() - began

        self._pending.append(self._pool.submit(timed))
        while len(self._pending) > self.max_pending:
            self._collect()

    def _drain(self) -> None:
        while self._pending:
            self._collect()

    def _collect(self) -> None:
        value, seconds = self._pending.popleft().result()  # re-raises a frame's UserError here
        self._add(value)
        self._busy += seconds

    def _add(self, value: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the worker threads (pending frames are dropped)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
