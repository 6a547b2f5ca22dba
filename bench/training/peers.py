"""Wait for the other workers of a multi-worker job, saying so, for a bounded time.

`MultiWorkerMirroredStrategy()` blocks until every task of `TF_CONFIG` has joined, silently and without
bound (a typo in one host: forever), inside a C++ call that holds the GIL: no Python thread runs and no
Python signal handler either (Ctrl-C and SIGTERM are lost until it returns). So the wait is watched from
outside: `waiting_for` starts a small watchdog process (plain Python, no TensorFlow) that prints which
peers this worker waits for after a few seconds and, when `timeout` passes, prints an error and stops this
process.

Stopping it takes signals that need no Python: for the length of the wait SIGINT is handled at the C level
by `_exit(signum)` (async-signal-safe, no GIL), so the watchdog's SIGINT, like a Ctrl-C, ends this process
with status 2 (the status of a bad input), never by a signal. SIGTERM cannot be handled that way: the same
C++ call installs TensorFlow's preemption notifier, whose SIGTERM handler only sets a flag, so a worker
told to stop kept waiting until the timeout. `hold_termination`, called first thing in the process,
blocks SIGTERM in this thread and so in every thread started after it (TensorFlow's, OpenBLAS's): a
SIGTERM stays pending, the watchdog sees it in `/proc/<pid>/status` and stops this process the same way
(status 2). When the wait is over, SIGTERM's own handler replaces TensorFlow's and is unblocked (a pending
one then acts at once). SIGINT gets that handler even where it was ignored (a background job of a script):
it is how the watchdog stops the wait, and such a worker used to wait forever at the timeout; it is
ignored again after the wait. Nothing has been written when this happens: the strategy is made before the
training folder is taken.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

NOTICE_AFTER = 3.0  # seconds of waiting before the line naming the peers
POLL = 0.05  # seconds between the watchdog's looks for a pending SIGTERM

# argv: timeout, notice_after, parent pid, signal that stops the parent, watch for SIGTERM (1/0), peers;
# stdin: "done" from the parent when the wait is over (end of file: the parent is gone)
WATCHDOG = r"""
import os, select, signal, sys, time
timeout, notice, parent, stop = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
watch_term, peers, poll = sys.argv[5] == "1", sys.argv[6], float(sys.argv[7])
TERM_BIT = 1 << (signal.SIGTERM - 1)
began = time.monotonic()
announced = False
def say(text):
    print(text, file=sys.stderr, flush=True)
def term_pending():
    try:
        with open(f"/proc/{parent}/status") as status:
            return any(line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) & TERM_BIT
                       for line in status)
    except (OSError, ValueError):
        return False
try:
    while True:
        due = notice if not announced and notice < timeout else timeout
        left = max(due - (time.monotonic() - began), 0.0)
        ready, _, _ = select.select([sys.stdin], [], [], min(left, poll) if watch_term else left)
        if ready:
            if os.read(sys.stdin.fileno(), 16).startswith(b"done"):
                sys.exit(0)
            say(f"stopped while waiting for {peers}")
            sys.exit(0)
        if watch_term and term_pending():
            say(f"stopped by SIGTERM while waiting for {peers}: nothing was written")
            os.kill(parent, stop)
            sys.exit(0)
        waited = time.monotonic() - began
        if waited >= timeout:
            say(f"error: gave up after {timeout:g} s waiting for {peers}: start every worker of TF_CONFIG "
                f"(check each address and port), or raise --worker-timeout")
            os.kill(parent, stop)
            sys.exit(0)
        if not announced and waited >= notice:
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


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


_held = False  # whether hold_termination blocked SIGTERM (release_termination undoes only that)


def hold_termination() -> bool:
    """Block SIGTERM in this thread and every thread started after it. Call it first thing in the process
    (`python -m bench train` with TF_CONFIG does): a thread that exists already (OpenBLAS starts some when
    numpy is imported) would take the SIGTERM to TensorFlow's handler. Whether it is held: only on Linux
    (the watchdog reads the pending signals from /proc), from the main thread, where it is not ignored."""
    global _held
    if not (_main_thread() and Path("/proc/self/status").exists()):
        return False
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    _held = True
    return True


def release_termination() -> None:
    """Undo `hold_termination` (a pending SIGTERM then acts at once); nothing if it held nothing."""
    global _held
    if _held and _main_thread():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        _held = False


@contextlib.contextmanager
def waiting_for(peers: list[str], timeout: float, *, notice_after: float = NOTICE_AFTER) -> Iterator[None]:
    """Run the block (a call that waits for `peers`) watched: a line naming the peers after
    `notice_after` s, an error and exit 2 after `timeout` s; Ctrl-C and SIGTERM end the process meanwhile
    (SIGTERM where `hold_termination` came first)."""
    main = _main_thread()
    term_held = main and signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    stop = signal.SIGINT if main else signal.SIGKILL  # only the main thread can set the C-level handler
    watchdog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WATCHDOG,
            str(timeout),
            str(notice_after),
            str(os.getpid()),
            str(int(stop)),
            "1" if term_held else "0",
            ", ".join(peers),
            str(POLL),
        ],
        stdin=subprocess.PIPE,
    )
    previous = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM) if main}  # put back after
    # an unheld SIGTERM gets the C-level exit too (it works where TensorFlow leaves SIGTERM alone), unless
    # it is ignored; SIGINT always (see the module docstring)
    term_exit = (
        signal.SIGTERM in previous and not term_held and previous[signal.SIGTERM] is not signal.SIG_IGN
    )
    _exit_on(tuple(n for n in previous if n == signal.SIGINT or term_exit))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            watchdog.stdin.write(b"done\n")
            watchdog.stdin.close()
        watchdog.wait()
        for number, handler in previous.items():  # the handlers of before, TensorFlow's SIGTERM one out
            signal.signal(number, handler or signal.SIG_DFL)
        if term_held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            global _held
            _held = False


def barrier(strategy) -> None:
    """One all-reduce over every replica of `strategy`: returns once all workers take part."""
    import tensorflow as tf

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)
    float(total)
