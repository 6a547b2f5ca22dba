"""Speed figures by mmsegmentation's benchmark convention: warm-up calls left out, fps = timed calls / their
time, nearest-rank p50/p90, and the peak-memory probe a benchmark resets between cases."""

from __future__ import annotations

import numpy as np
import pytest

from bench.perf import latency
from data.errors import UserError


def test_fps_leaves_out_the_warm_up_calls_and_divides_the_timed_calls_by_their_time(monkeypatch):
    durations = [9.0] * latency.WARMUP + [0.1, 0.2, 0.3, 0.4]
    clock = iter(t for d in durations for t in (0.0, d))  # start, end of each call
    monkeypatch.setattr(latency.time, "perf_counter", lambda: next(clock))
    calls = []
    result = latency.time_calls(lambda: calls.append(1), len(durations), batch=2)
    assert len(calls) == len(durations) and result.seconds == (0.1, 0.2, 0.3, 0.4)
    assert result.images_per_s == pytest.approx(2 * 4 / 1.0)  # batch x (n - 5) / time of the last n - 5
    assert result.p50_ms == pytest.approx(300.0) and result.p90_ms == pytest.approx(400.0)


def test_percentiles_are_nearest_rank():
    result = latency.Latency(tuple(float(s) for s in range(1, 101)))
    assert result.p50_ms == 51_000.0 and result.p90_ms == 91_000.0
    assert latency.Latency((0.2,)).p90_ms == 200.0


def test_too_few_iterations_for_the_warm_up_is_an_error():
    with pytest.raises(UserError, match="5 warm-up calls"):
        latency.time_calls(lambda: None, latency.WARMUP)


def test_cpu_peak_memory_is_reset_between_cases():
    memory = latency.PeakMemory(gpu=False)
    memory.reset()
    big = np.ones(300 * 2**20 // 8)  # 300 MB resident
    grown = memory.peak_mb()
    del big
    memory.reset()
    after = memory.peak_mb()
    assert grown > 250
    if memory.resettable:
        assert after < grown - 200
