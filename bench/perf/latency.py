"""Speed in the field's language: warm-up left out, N timed calls, p50/p90 latency, images/s, peak memory.

mmsegmentation's `tools/analysis_tools/benchmark.py` is the convention its published fps follow: batch 1,
each call timed on its own and synchronised on the device, the first `WARMUP` calls left out, fps = timed
calls / their summed time. Its PSPNet-R50-D8 figure is `PUBLISHED`. A figure means little without where
it was measured (mmsegmentation issues #3133 and #1458 ask exactly that), so every row carries its mode,
precision, batch, size, device, threads and TensorFlow version.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WARMUP = 5
PUBLISHED = {
    "source": "mmsegmentation model zoo, configs/pspnet (pspnet_r50-d8_512x1024_40k_cityscapes)",
    "model": "PSPNet-R50-D8",
    "size": "1024x2048",
    "mode": "whole",
    "precision": "fp32",
    "device": "NVIDIA Tesla V100",
    "fps": 4.07,
}
"""mmsegmentation's published inference speed of PSPNet-R50-D8 on Cityscapes (its benchmark.py)."""


@dataclass(frozen=True)
class Latency:
    """The timed calls of one case (warm-up calls already left out)."""

    seconds: tuple[float, ...]
    batch: int = 1
    warmup: int = WARMUP

    @property
    def images_per_s(self) -> float:
        """mmsegmentation's fps: images of the timed calls / their summed time."""
        return self.batch * len(self.seconds) / max(sum(self.seconds), 1e-12)

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the call latency in milliseconds (p50: the median call)."""
        ordered = sorted(self.seconds)
        return 1000.0 * ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p90_ms(self) -> float:
        return self.percentile_ms(90)


def time_calls(
    call: Callable[[], object], iterations: int, *, warmup: int = WARMUP, batch: int = 1
) -> Latency:
    """`iterations` calls of `call` (each must return only when the device is done: fetch a result), the
    first `warmup` of them left out (tracing, compilation, allocation)."""
    if iterations <= warmup:
        from data.errors import UserError

        raise UserError(f"{iterations} iterations leave none to time after the {warmup} warm-up calls")
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return Latency(tuple(times[warmup:]), batch=batch, warmup=warmup)


class PeakMemory:
    """Peak memory of what runs between `reset()` and `peak_mb()`: the device allocator's peak on a GPU, the
    process's peak resident set on a CPU (Linux resets it through /proc/self/clear_refs; elsewhere it is the
    peak since the process started, which `resettable` says)."""

    def __init__(self, gpu: bool) -> None:
        self.gpu = gpu
        self.kind = "device memory" if gpu else "resident set"
        self.resettable = gpu or Path("/proc/self/clear_refs").exists()

    def reset(self) -> None:
        if self.gpu:
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the resident high-water mark
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        if self.gpu:
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
