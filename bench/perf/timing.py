"""Timing tools of the benchmarks: one pass measured by the wall clock and the CPU clock, best-of-N, and
runners taking turns so that machine load touches every contender alike."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """One pass: wall seconds, and CPU seconds of the process running it (all its threads).

    On a machine shared with other jobs the wall time measures the neighbours as much as the network; the
    CPU time stays put (measured here: fp32 8.2-8.6 CPU s a pass while the wall time went from 4.2 to 8.7 s),
    and on an idle machine it is the wall time times the threads for any program that keeps them busy.
    """

    wall: float
    cpu: float


class RunnerUnavailable(Exception):
    """A runner that cannot run here (e.g. bfloat16 autocast missing in the peer); the text says why."""


def cpu_seconds(children: bool = False) -> float:
    """CPU seconds of this process (all threads), plus its finished child processes with `children`.

    The process's own time comes from `time.process_time` (nanosecond clock): `os.times` counts in clock
    ticks of 10 ms, so a short pass could read 0 s and a ratio of two passes divide by zero."""
    own = time.process_time()
    if not children:
        return own
    t = os.times()
    return own + t.children_user + t.children_system


def measure(fn: Callable[[], Any], *, children: bool = False) -> tuple[Timing, Any]:
    """(Timing of one call of `fn`, its value); `children` also counts the CPU of finished child processes."""
    wall, cpu = time.perf_counter(), cpu_seconds(children)
    value = fn()
    return Timing(time.perf_counter() - wall, cpu_seconds(children) - cpu), value


def timed(fn: Callable[[], object]) -> Callable[[], Timing]:
    """A runner for `interleaved_passes`: one call of `fn`, by the wall clock and this process's CPU clock."""
    return lambda: measure(fn)[0]


def rate(items: int, seconds: float) -> float:
    """Items per second (a zero duration counts as a nanosecond)."""
    return items / max(seconds, 1e-9)


def best_seconds(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall seconds of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    times = sorted(measure(fn)[0].wall for _ in range(max(1, repeats)))
    return times[0], times[len(times) // 2]


def interleaved_passes(
    runners: dict[str, Callable[[], Timing]], repeats: int
) -> tuple[dict[str, list[Timing]], dict[str, str]]:
    """({name: its timed passes}, {name: why it did not run}) of runners that each run one pass and return
    its `Timing`. After a warm-up pass of each, the runners take turns pass by pass, so a change in machine
    load touches all of them alike: pass k of two runners is a fair pair."""
    active, failed = dict(runners), {}
    times: dict[str, list[Timing]] = {name: [] for name in runners}
    for round_ in range(max(1, repeats) + 1):  # round 0: warm-up (tracing, allocation), not timed
        for name, fn in list(active.items()):
            try:
                timing = fn()
            except RunnerUnavailable as exc:
                failed[name] = str(exc)
                del active[name]
                continue
            if round_:
                times[name].append(timing)
    return {name: t for name, t in times.items() if t}, failed


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def load_note() -> str:
    """The machine's load average: other processes on the cores make wall times unreliable."""
    from bench.common.device import cpu_count

    try:
        load = os.getloadavg()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load:.1f} on {cpu_count()} cores"
