"""The worker pool that decodes and scores images in parallel, streaming small results back.

Ctrl-C: the terminal sends SIGINT to the whole process group. A worker that dies of it may hold a lock of
the pool's queues, and the main process then waits for that lock forever while it ends the pool. So workers
ignore SIGINT (blocked from before they exist until they ignore it) and only the main process reacts: it
ends the pool while every worker is alive, and the command exits 130.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence

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


def _init_worker() -> None:
    """Worker initializer: SIGINT is the main process's business (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _keep_freed_memory()


def _start_pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool whose workers and handler threads start with SIGINT blocked; a Ctrl-C meanwhile waits."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return _pool_context().Pool(workers, initializer=_init_worker)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and `taskset` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cap_workers(requested: int | None) -> tuple[int, str | None]:
    """(processes to use, a note when `requested` was more than the cores): more only adds overhead."""
    cores = available_cores()
    if requested is None:
        return cores, None
    if requested > cores:
        return cores, f"--workers {requested} capped at {cores}, the number of available cores"
    return requested, None


def map_images(func, items: Sequence, workers: int | None) -> Iterator:
    """func over items in order, in `workers` processes (inline for one; never more than the cores);
    results stream: flat memory."""
    workers = max(1, min(cap_workers(workers)[0], len(items)))
    if workers == 1:
        yield from map(func, items)
        return
    with _start_pool(workers) as pool:  # leaving it (done, error) terminates the live workers
        try:
            yield from pool.imap(func, items, chunksize=1)
        except KeyboardInterrupt:
            _exit_interrupted(pool)


def _exit_interrupted(pool) -> None:
    """Ctrl-C: Pool.terminate() takes the task queue's lock, which an idle worker holds while waiting for a
    task that never comes once terminating, so it could hang there. Kill the workers and leave.

    The pool's worker handler replaces every worker that dies; a replacement started after the kills would
    take a task and print a BrokenPipeError traceback once this process is gone. So the handler is stopped
    first (what Pool.terminate() does before it takes that lock) and every worker is dead before the exit.
    """
    handler = pool._worker_handler
    handler._state = multiprocessing.pool.TERMINATE
    pool._change_notifier.put(None)  # wakes the handler from its wait for a worker to die
    handler.join(timeout=5)
    for worker in list(pool._pool):
        worker.kill()
    for worker in list(pool._pool):
        worker.join(timeout=5)
    _release_semaphores(pool)
    note = _INTERRUPT_NOTES[-1]() if _INTERRUPT_NOTES else "interrupted"
    sys.stderr.write(f"{note}\n")
    sys.stderr.flush()
    os._exit(130)


_INTERRUPT_NOTES: list = []  # what a Ctrl-C during `bounded_map` says, innermost caller last


@contextlib.contextmanager
def interrupt_note(note) -> Iterator[None]:
    """While the block runs, a Ctrl-C that stops `bounded_map` prints `note()` (e.g. how many units of a
    sweep are saved) instead of a bare "interrupted"."""
    _INTERRUPT_NOTES.append(note)
    try:
        yield
    finally:
        _INTERRUPT_NOTES.remove(note)


def _release_semaphores(pool) -> None:
    """Unlink the named semaphores of the pool's queues (six: two locks each): `os._exit` runs no finalizer,
    so the resource tracker would otherwise report them leaked at the exit."""
    from multiprocessing.synchronize import SemLock

    for queue in (pool._inqueue, pool._outqueue, pool._change_notifier):
        for lock in (getattr(queue, "_rlock", None), getattr(queue, "_wlock", None)):
            name = getattr(getattr(lock, "_semlock", None), "name", None)
            if name:
                with contextlib.suppress(OSError):
                    SemLock._cleanup(name)


def bounded_map(func, items: Iterable, workers: int, ahead: int) -> Iterator:
    """func over items in order in `workers` processes, at most `ahead` results computed but not yet taken.

    For large results (full-resolution frames) made faster than they are consumed: `map_images`' `imap`
    queues every task at once and keeps every finished result. `items` is read lazily, as results are
    taken. Inline for `workers` <= 1.
    """
    if workers <= 1:
        yield from map(func, items)
        return
    ahead = max(ahead, workers)
    with _start_pool(workers) as pool:  # leaving it terminates the live workers
        pending: list = []
        upcoming = iter(items)
        for item in upcoming:
            pending.append(pool.apply_async(func, (item,)))
            if len(pending) >= ahead:
                break
        try:
            while pending:
                result = pending.pop(0).get()
                for item in upcoming:
                    pending.append(pool.apply_async(func, (item,)))
                    break
                yield result
        except KeyboardInterrupt:
            _exit_interrupted(pool)
