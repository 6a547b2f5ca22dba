"""Scale-out training on tf.distribute: two workers, two mirrored replicas and one process agree.

Each distributed run is a fresh `python -m bench train` process (logical CPU devices and multi-worker
collectives are fixed when TensorFlow starts), on the tiny pspnet preset without dropout, small crops and a
few steps. The reference is one process with the default strategy, the same global batch and seed.

The runs are sized to be well-conditioned, so that equality within a tight float tolerance is a sharp
test: rounding differs between the strategies (the all-reduce's summation order, the kernels a CPU picks)
and must not grow. The gradient of a convolution in front of a BatchNorm is a small difference of large
terms, so its rounding error is large relative to it, and a large learning rate feeds that error back into
the weights, where it grows step by step (seen on a fresh clone at lr 0.01: identical losses for 3 steps,
then 1.5% of a stem kernel's scale apart at step 6; 64x64 crops went the same way at step 3). At lr 0.001
the six steps stay at float noise (largest difference 4e-7 of a tensor's scale, 0.4% of the tolerance,
measured against the mirrored run), while a run without SyncBN or with the wrong slice of the global batch
on a replica misses the tolerance by far (checked by breaking each on purpose).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from bench.sources import keras_checkpoint as ckpt  # noqa: E402  (after the TensorFlow check)
from bench.training.recipes import Recipe  # noqa: E402
from bench.training.train import RunOptions, train  # noqa: E402
from bench.training.train_step import make_optimizer  # noqa: E402

STEPS, BATCH, CROP, LR = 6, 8, (32, 48), 0.001
TIMEOUT = 300  # seconds a training process may take before the test kills it and fails
ENV = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}


def train_argv(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "train",
        "--model",
        "pspnet",
        "--preset",
        "tiny",
        "--model-opt",
        "dropout=0",
        "--dataset",
        str(dataset),
        "--steps",
        str(STEPS),
        "--batch",
        str(BATCH),
        "--crop",
        f"{CROP[0]}x{CROP[1]}",
        "--lr",
        str(LR),
        "--out",
        str(out),
        "--log-every",
        "1",
        "--no-progress",
        *extra,
    ]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Job:
    """Training processes started together; whatever still runs at the end is killed (no leftovers)."""

    def __init__(self, commands: list[tuple[list[str], dict[str, str]]], logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = [logs / f"process{i}.log" for i in range(len(commands))]
        self.processes = []
        for (argv, env), log in zip(commands, self.logs, strict=True):
            with log.open("w") as f:
                self.processes.append(subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT))

    def wait(self, timeout: float = TIMEOUT) -> list[int]:
        deadline = time.monotonic() + timeout
        try:
            return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in self.processes]
        finally:
            self.stop()

    def output(self, index: int) -> str:
        return self.logs[index].read_text()

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def two_workers(dataset: Path, out: Path, logs: Path, *extra: str) -> Job:
    """Two `--strategy multiworker` processes on 127.0.0.1, configured by TF_CONFIG like any cluster."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    commands = []
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        argv = train_argv(dataset, out, "--strategy", "multiworker", *extra)
        commands.append((argv, {**ENV, "TF_CONFIG": json.dumps(config)}))
    return Job(commands, logs)


def wait_for(path: Path, job: Job, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline or any(p.poll() is not None for p in job.processes):
            job.stop()
            pytest.fail(f"{path.name} never appeared; logs:\n{job.output(0)[-3000:]}")
        time.sleep(0.05)


def state(path: Path) -> list[tuple[str, np.ndarray]]:
    """Weights, BatchNorm statistics and optimizer variables (momenta, iteration count) of a checkpoint,
    in the model's variable order (names get numbered suffixes when a process builds several models)."""
    net = ckpt.rebuild(ckpt.read_metadata(path))
    optimizer = make_optimizer(LR, STEPS)
    net.compile(optimizer=optimizer)
    optimizer.build(net.trainable_variables)
    ckpt.load_weights(net, path)
    return [(v.path, v.numpy()) for v in net.weights + optimizer.variables]


def assert_same_state(expected: Path, got: Path) -> None:
    a, b = state(expected), state(got)
    assert len(a) == len(b) and len(a) > 100
    for (name, x), (_, y) in zip(a, b, strict=True):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5, err_msg=name)


def chief_files_only(out: Path, runs: int = 1) -> None:
    """What one writer leaves: checkpoints, logs, one TensorBoard event file per run, no temporary files
    (its lock file is removed when it is done)."""
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.startswith(".")] == [], names
    assert len(list((out / "tensorboard").iterdir())) == runs


@pytest.fixture(scope="module")
def single(tiny_dataset, tmp_path_factory) -> Path:
    """The reference: one process, default strategy, the same global batch, seed and steps."""
    out = tmp_path_factory.mktemp("single")
    recipe = Recipe(
        model="pspnet", preset="tiny", options={"dropout": 0}, steps=STEPS, batch=BATCH, crop=CROP, lr=LR
    )
    path = train(recipe, tiny_dataset, out, run=RunOptions(strategy="default", progress=False))
    assert ckpt.read_metadata(path)["replicas"] == 1
    return path


@pytest.mark.slow
def test_two_workers_reach_the_weights_of_one_process(tiny_dataset, single, tmp_path):
    out = tmp_path / "out"
    job = two_workers(tiny_dataset, out, tmp_path / "logs", "--val-every", str(STEPS))
    codes = job.wait()
    assert codes == [0, 0], job.output(0)[-3000:] + job.output(1)[-3000:]
    final = out / ckpt.checkpoint_name(STEPS)
    meta = ckpt.read_metadata(final)
    assert (meta["strategy"], meta["replicas"], meta["workers"], meta["sync_bn"]) == (
        "multiworker",
        2,
        2,
        True,
    )
    assert_same_state(single, final)
    # Only the chief wrote: its checkpoint, logs and validation; the other worker said so and wrote nothing.
    assert "worker 1 done" in job.output(1) and "the chief saved" in job.output(1)
    assert {"train_log.csv", "val_log.csv", "val_miou.png", "best.keras"} <= {p.name for p in out.iterdir()}
    chief_files_only(out)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_equals_the_default_strategy_and_resumes_after_ctrl_c(
    tiny_dataset, single, tmp_path
):
    out = tmp_path / "out"
    argv = train_argv(
        tiny_dataset, out, "--strategy", "mirrored", "--cpu-replicas", "2", "--checkpoint-every", "1"
    )
    job = Job([(argv, ENV)], tmp_path / "logs")
    wait_for(out / ckpt.checkpoint_name(1), job)
    job.processes[0].send_signal(signal.SIGINT)  # Ctrl-C: the chief saves where it stands
    assert job.wait() == [130], job.output(0)[-3000:]
    stopped = ckpt.list_checkpoints(out)[-1]
    assert 1 <= ckpt.read_metadata(stopped)["steps"] < STEPS, "Ctrl-C came too late to interrupt"

    job = Job([(train_argv(tiny_dataset, out, "--cpu-replicas", "2", "--resume"), ENV)], tmp_path / "logs2")
    assert job.wait() == [0], job.output(0)[-3000:]
    final = ckpt.resolve(out)
    meta = ckpt.read_metadata(final)
    assert (meta["steps"], meta["strategy"], meta["replicas"], meta["sync_bn"]) == (
        STEPS,
        "mirrored",
        2,
        True,
    )
    assert_same_state(single, final)
    chief_files_only(out, runs=2)


@pytest.mark.slow
def test_killed_worker_stops_the_job_and_a_restart_resumes_to_the_same_weights(
    tiny_dataset, single, tmp_path
):
    out = tmp_path / "out"
    job = two_workers(tiny_dataset, out, tmp_path / "logs", "--checkpoint-every", "1")
    wait_for(out / ckpt.checkpoint_name(1), job)
    job.processes[1].kill()
    codes = job.wait()
    assert codes[0] == 2, job.output(0)[-3000:]  # the chief notices, names the fix and exits
    assert "restart every worker with --resume" in job.output(0)
    assert ckpt.read_metadata(ckpt.resolve(out))["steps"] < STEPS

    job = two_workers(tiny_dataset, out, tmp_path / "logs2", "--checkpoint-every", "1", "--resume")
    assert job.wait() == [0, 0], job.output(0)[-3000:] + job.output(1)[-3000:]
    assert_same_state(single, out / ckpt.checkpoint_name(STEPS))
    chief_files_only(out, runs=2)


@pytest.mark.slow
def test_mixed_precision_runs_under_mirrored_replicas_with_syncbn(tiny_dataset, tmp_path):
    """The GPU settings (bfloat16 compute) under a two-replica strategy, exercised on logical CPUs; XLA is
    left to single-replica runs."""
    code = (
        "import sys\nfrom bench.training.recipes import Recipe\n"
        "from bench.training.train import RunOptions, train\n"
        "recipe = Recipe(model='pspnet', preset='tiny', steps=2, batch=8, crop=(32, 48), lr=0.01)\n"
        f"p = train(recipe, {str(tiny_dataset)!r}, {str(tmp_path / 'out')!r}, "
        "run=RunOptions(progress=False, accelerate=True, cpu_replicas=2))\n"
        "print('CHECKPOINT', p)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    path = Path(done.stdout.split("CHECKPOINT ")[-1].strip())
    meta = ckpt.read_metadata(path)
    assert (meta["accelerated"], meta["xla"], meta["replicas"], meta["sync_bn"]) == (True, False, 2, True)
    assert all(np.isfinite(v).all() for _, v in state(path))


@pytest.mark.slow
def test_perf_train_prints_images_per_second_for_one_and_two_replicas_and_the_efficiency():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "perf", "train", "--crop", "32x48", "--steps", "1"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rates = [
        float(line.split(": ")[1].split()[0]) for line in done.stdout.splitlines() if "replica(s)" in line
    ]
    assert len(rates) == 2 and min(rates) > 0
    printed = float(done.stdout.split("scaling efficiency with 2 replicas: ")[1].split("%")[0])
    assert printed == pytest.approx(100 * rates[1] / (2 * rates[0]), abs=1.0)  # from the unrounded rates
