"""Progress for long loops: a tqdm bar on a terminal, a plain line now and then in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a CI log it becomes one endless
line of partial bars. When the stream is not a terminal, `progress_bar` returns `LogLines` instead: the
same `update` / `set_postfix` / `close` calls, printing one complete line every `interval` seconds (with the
rate, the time elapsed and the ETA at that rate) and a last one at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LOG_INTERVAL_S = 30.0


class LogLines:
    """tqdm's small interface (update, set_postfix, close) as a line every `interval` seconds."""

    def __init__(
        self,
        total: int,
        *,
        desc: str,
        unit: str,
        initial: int = 0,
        interval: float = LOG_INTERVAL_S,
        stream: TextIO | None = None,
    ):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval = interval
        self.stream = stream
        self.postfix = ""
        self._start_n = initial
        self._began = self._last = time.monotonic()
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._print()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n > self._start_n:
                self._print(final=True)

    def _print(self, final: bool = False) -> None:
        """A progress line; the last one gives the time taken, not a rate: the command's own figure (e.g.
        images/s after the warm-up frame) follows it, and two rates on two lines contradict each other."""
        self._last = now = time.monotonic()
        rate = (self.n - self._start_n) / max(now - self._began, 1e-9)
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        line = f"{self.desc}: {self.unit} {self.n}/{self.total}{percent}"
        if final:
            line += f", done in {duration(now - self._began)}"
        else:
            line += f", {rate:.2f} {self.unit}/s, {duration(now - self._began)} elapsed"
        if self.total and self.n < self.total and rate > 0:
            line += f", ETA {duration((self.total - self.n) / rate)}"
        if self.postfix:
            line += f", {self.postfix}"
        print(line, file=self.stream or sys.stderr, flush=True)

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `1 h 02 min`: a span a person reads at a glance (ETA, elapsed)."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _Off:
    """No progress at all (`--no-progress`)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether `stream` (default stderr, where progress goes) is a terminal that can redraw a bar."""
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(
    total: int, *, desc: str, unit: str, initial: int = 0, enabled: bool = True, stream: TextIO | None = None
):
    """A tqdm bar when `stream` (stderr) is a terminal, `LogLines` otherwise, nothing when not `enabled`."""
    if not enabled:
        return _Off()
    if is_terminal(stream):
        from tqdm import tqdm

        return tqdm(
            total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=stream or sys.stderr
        )
    return LogLines(total, desc=desc, unit=unit, initial=initial, stream=stream)
