"""The evaluation worker pool: Ctrl-C exits 130 every time, never a hang; never more workers than cores.

A terminal's Ctrl-C is SIGINT to the whole process group, workers included; a worker that died of it while
holding a queue lock used to leave the main process waiting forever (about 1 try in 10).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.cli import main
from bench.evaluation.pool import available_cores, map_images
from tests.cityscapes_files import write_png

REPO = Path(__file__).resolve().parents[1]
FRAMES = 3000  # ~5 s of evaluation with 2 workers: every interrupt lands mid-run
TRIES = 8


def many_frames(root: Path, n: int) -> tuple[Path, Path]:
    """n GT frames and predictions, all hard links to one tiny frame (cheap to make, real to decode)."""
    labels = np.random.default_rng(0).integers(0, 34, (64, 128)).astype(np.uint8)
    one_label = write_png(root / "one_labelIds.png", labels)
    one_inst = write_png(root / "one_instanceIds.png", labels.astype(np.uint16))
    gt, pred = root / "gt" / "gtFine" / "val" / "aachen", root / "pred"
    gt.mkdir(parents=True)
    (root / "gt" / "leftImg8bit" / "val").mkdir(parents=True)
    pred.mkdir()
    for k in range(n):
        key = f"aachen_{k:06d}_000019"
        os.link(one_label, gt / f"{key}_gtFine_labelIds.png")
        os.link(one_inst, gt / f"{key}_gtFine_instanceIds.png")
        os.link(one_label, pred / f"{key}_leftImg8bit.png")
    return root / "gt", pred


def children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def interrupt_once(gt: Path, pred: Path, rng: random.Random) -> tuple[int | str, str]:
    """Start the CLI in its own process group, SIGINT the group once both workers run; (exit, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "evaluate", "--gt", str(gt), "--pred", str(pred), "--workers", "2"],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.4))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return "hang", err
    return proc.returncode, err


def test_ctrl_c_with_two_workers_exits_130_every_time(tmp_path):
    gt, pred = many_frames(tmp_path, FRAMES)
    rng = random.Random(12)
    outcomes = [interrupt_once(gt, pred, rng) for _ in range(TRIES)]
    assert [code for code, _ in outcomes] == [130] * TRIES, [err[-300:] for _, err in outcomes]
    for _, err in outcomes:
        assert err.strip() == "interrupted", err  # no worker tracebacks


LATE_LOOK = """
import os, sys, time
from bench.evaluation import pool as pool_module

def slow(item):
    time.sleep(0.01)
    return item

exit_code = []
os._exit, real_exit = exit_code.append, os._exit
pool = pool_module._start_pool(2)
results = pool.imap(slow, range(10_000), chunksize=1)
next(results)
pool_module._exit_interrupted(pool)
time.sleep(0.5)  # a loaded machine: the exit comes late; the pool's handler had time to replace workers
alive = [w.name for w in pool._pool if w.is_alive()]
print(exit_code, alive, flush=True)
real_exit(0)
"""


def test_no_worker_is_alive_when_the_interrupted_command_exits():
    """A replacement worker started after the kills printed a BrokenPipeError traceback (seen in CI)."""
    run = subprocess.run(
        [sys.executable, "-c", LATE_LOOK], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.stdout.strip() == "[130] []", run.stdout + run.stderr
    assert run.stderr.strip() == "interrupted", run.stderr


def _pid(_: int) -> int:
    time.sleep(0.01)  # long enough that every worker gets tasks
    return os.getpid()


def test_more_workers_than_cores_are_capped_at_the_cores():
    pids = set(map_images(_pid, range(4 * available_cores() + 40), 40))
    assert len(pids) <= available_cores()


def test_evaluate_says_when_it_caps_the_workers(tmp_path, capsys):
    gt, pred = many_frames(tmp_path, 4)
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--workers", "40"]) == 0
    captured = capsys.readouterr()
    assert f"note: --workers 40 capped at {available_cores()}, the number of available cores" in captured.err
    assert "4 images" in captured.out


SPAWNED_INTERRUPT = """
import multiprocessing, time
from bench.evaluation import pool as pool_module

pool_module._pool_context = lambda: multiprocessing.get_context("spawn")  # as after TensorFlow started
pool = pool_module._start_pool(2)
results = pool.imap(time.sleep, [0.01] * 1000, chunksize=1)
next(results)
with pool_module.interrupt_note(lambda: "interrupted: 3 of 45 units saved in OUT"):
    pool_module._exit_interrupted(pool)
"""


def test_an_interrupted_spawned_pool_leaks_no_semaphore_and_says_what_was_kept():
    """Ctrl-C in `bench robustness` printed a bare "interrupted" and the resource tracker's warning about
    6 leaked semaphores (the pool queues' locks: os._exit runs no finalizer)."""
    run = subprocess.run(
        [sys.executable, "-c", SPAWNED_INTERRUPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 130
    assert run.stderr.strip() == "interrupted: 3 of 45 units saved in OUT", run.stderr
