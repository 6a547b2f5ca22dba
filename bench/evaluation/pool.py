"""The worker pool that decodes and scores images in parallel, streaming small results back."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator, Sequence

_THREADED_RUNTIMES = ("tensorflow", "torch", "jax")


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (workers start in milliseconds), else spawn.

    Forking a process that runs other threads (TensorFlow's thread pools after `bench run` predicted) can
    leave a lock held in the child; such processes get freshly started workers instead.
    """
    threaded = threading.active_count() > 1 or any(name in sys.modules for name in _THREADED_RUNTIMES)
    if "fork" in multiprocessing.get_all_start_methods() and not threaded:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _keep_freed_memory() -> None:
    """Worker initializer: let glibc keep freed image buffers instead of returning them to the kernel.

    Every image allocates and frees the same few megabytes; with glibc's defaults a fresh worker gives them
    back and faults them in again (about 3000 page faults an image, a quarter of the decode time). Raising
    the trim and mmap thresholds keeps one image's working set mapped: memory stays flat, just not shrinking.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc's maximum on 64-bit)
    except (OSError, AttributeError):  # not glibc: defaults are fine, only slower
        pass


def map_images(func, items: Sequence, workers: int | None) -> Iterator:
    """func over items in order, in `workers` processes (inline for one); results stream: flat memory."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if workers == 1:
        yield from map(func, items)
        return
    with _pool_context().Pool(workers, initializer=_keep_freed_memory) as pool:
        yield from pool.imap(func, items, chunksize=1)
