"""Wait for the other workers of a multi-worker job, saying so, for a bounded time.

`MultiWorkerMirroredStrategy()` blocks until every task of `TF_CONFIG` has joined, silently and without
bound (a typo in one host: forever), inside a C++ call that holds the GIL: no Python thread runs and no
Python signal handler either (Ctrl-C and SIGTERM are lost until it returns). So the wait is watched from
outside: `waiting_for` starts a small watchdog process (plain Python, no TensorFlow) that prints which
peers this worker waits for after a few seconds and, when `timeout` passes, prints an error and sends this
process SIGINT. For the length of the wait SIGINT and SIGTERM are handled at the C level by `_exit(signum)`
(async-signal-safe, needs no GIL), so the watchdog's SIGINT ends this process with status 2 (the status of
a bad input), and a Ctrl-C or SIGTERM stops it at once (status 2 or 15), never by a signal. Nothing has
been written when this happens: the strategy is made before the training folder is taken.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Iterator

NOTICE_AFTER = 3.0  # seconds of waiting before the line naming the peers
WATCHED = (signal.SIGINT, signal.SIGTERM)

# argv: timeout, notice_after, parent pid, peers; stdin: "done" from the parent when the wait is over
WATCHDOG = r"""
import os, select, signal, sys, time
timeout, notice, parent, peers = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
began = time.monotonic()
announced = False
def say(text):
    print(text, file=sys.stderr, flush=True)
try:
    while True:
        left = (timeout if announced or notice >= timeout else notice) - (time.monotonic() - began)
        ready, _, _ = select.select([sys.stdin], [], [], max(left, 0.0))
        if ready:
            if os.read(sys.stdin.fileno(), 16).startswith(b"done"):
                sys.exit(0)
            say(f"stopped while waiting for {peers}")
            sys.exit(0)
        if time.monotonic() - began >= timeout:
            say(f"error: gave up after {timeout:g} s waiting for {peers}: start every worker of TF_CONFIG "
                f"(check each address and port), or raise --worker-timeout")
            os.kill(parent, signal.SIGINT)
            sys.exit(0)
        if not announced:
            say(f"waiting for {peers} to join (up to {timeout:g} s, --worker-timeout) ...")
            announced = True
except KeyboardInterrupt:
    say(f"interrupted while waiting for {peers}")
"""


def _exit_on(signals: tuple[int, ...]) -> None:
    """Handle `signals` with libc's `_exit(signum)`: it runs even while a C++ call holds the GIL."""
    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    exit_now = ctypes.cast(libc._exit, ctypes.c_void_p)
    for number in signals:
        libc.signal(int(number), exit_now)


@contextlib.contextmanager
def waiting_for(peers: list[str], timeout: float, *, notice_after: float = NOTICE_AFTER) -> Iterator[None]:
    """Run the block (a call that waits for `peers`) watched: a line naming the peers after
    `notice_after` s, an error and exit 2 after `timeout` s; Ctrl-C/SIGTERM end the process meanwhile."""
    import os

    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(timeout), str(notice_after), str(os.getpid()), ", ".join(peers)],
        stdin=subprocess.PIPE,
    )
    # ignored signals stay ignored (a background job's SIGINT); the others end the process
    previous = {n: signal.getsignal(n) for n in WATCHED if signal.getsignal(n) is not signal.SIG_IGN}
    try:
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGTERM) or signal.SIG_DFL)
    except ValueError:  # not the main thread: signals stay as they are
        previous = {}
    _exit_on(tuple(previous))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler or signal.SIG_DFL)  # Python's own C-level handler again
        with contextlib.suppress(OSError):
            watchdog.stdin.write(b"done\n")
            watchdog.stdin.close()
        watchdog.wait()


def barrier(strategy) -> None:
    """One all-reduce over every replica of `strategy`: returns once all workers take part."""
    import tensorflow as tf

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    float(total)
