# ruff: noqa: E501  (the case tables read best one case per line)
"""Training strategies and TF_CONFIG as an unlucky user (or a cluster scheduler) sets them.

Every contradiction between `--strategy`, `--cpu-replicas`, `--batch`, `--worker-timeout` and `TF_CONFIG`
is refused before TensorFlow starts: the cases run `bench.cli.main` in-process and assert exit 2, the
message, no traceback, nothing written, and that TensorFlow was not even imported for them (a check that
waits for TensorFlow's start-up is a check a user waits seconds for). The worker that waits for a peer
that never starts is a real process (marked slow).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli import main
from tests.cityscapes_files import write_dataset

MODEL = "tests.tiny_model:tiny"
PROJECT = Path(__file__).resolve().parents[1]
TWO = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


def cfg(cluster=None, task=None, **extra) -> str:
    config = {
        "cluster": TWO if cluster is None else cluster,
        "task": {"type": "worker", "index": 0} if task is None else task,
    }
    return json.dumps({**config, **extra})


@dataclass(frozen=True)
class Case:
    id: str
    extra: str  # flags after the common ones
    needles: tuple[str, ...]
    tf_config: str | None = None


NOT_USABLE = "TF_CONFIG is not a usable cluster configuration"
CASES = [
    # replica counts
    Case(
        "replicas-0-mirrored",
        "--strategy mirrored --cpu-replicas 0",
        ("--cpu-replicas 0 must be a whole number of at least 1",),
    ),
    Case(
        "replicas-negative-auto",
        "--cpu-replicas -2",
        ("--cpu-replicas -2 must be a whole number of at least 1",),
    ),
    Case("replicas-negative-mirrored", "--strategy mirrored --cpu-replicas -1", ("--cpu-replicas -1",)),
    Case("replicas-0-auto", "--cpu-replicas 0", ("--cpu-replicas 0",)),
    Case("replicas-not-a-number", "--cpu-replicas two", ("--cpu-replicas", "invalid int value: 'two'")),
    Case("replicas-fraction", "--cpu-replicas 1.5", ("--cpu-replicas", "invalid int value: '1.5'")),
    Case(
        "replicas-with-default",
        "--strategy default --cpu-replicas 2",
        ("--cpu-replicas 2 needs --strategy mirrored", "not default"),
    ),
    Case(
        "replicas-with-multiworker",
        "--strategy multiworker --cpu-replicas 2",
        ("--cpu-replicas 2 needs --strategy mirrored", "not multiworker"),
        tf_config=cfg(),
    ),
    Case(
        "replicas-with-auto-and-tf-config",
        "--cpu-replicas 2",
        ("--cpu-replicas 2 needs --strategy mirrored", "TF_CONFIG is set"),
        tf_config=cfg(),
    ),
    Case("strategy-unknown", "--strategy horovod", ("--strategy", "invalid choice: 'horovod'")),
    Case("strategy-upper-case", "--strategy Mirrored", ("invalid choice: 'Mirrored'",)),
    # global batch over replicas
    Case(
        "batch-3-over-2-replicas",
        "--strategy mirrored --cpu-replicas 2 --batch 3",
        ("--batch 3 is the global batch", "--cpu-replicas 2", "multiple of 2"),
    ),
    Case("batch-1-over-2-replicas", "--cpu-replicas 2 --batch 1", ("--batch 1", "multiple of 2")),
    Case("batch-4-over-3-replicas", "--cpu-replicas 3 --batch 4", ("--batch 4", "multiple of 3")),
    Case(
        "batch-3-over-2-workers",
        "--strategy multiworker --batch 3",
        ("--batch 3", "the 2 workers of TF_CONFIG", "multiple of 2"),
        tf_config=cfg(),
    ),
    Case(
        "batch-2-over-3-workers",
        "--batch 2",
        ("--batch 2", "the 3 workers of TF_CONFIG", "multiple of 3"),
        tf_config=cfg(
            {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]},
            {"type": "chief", "index": 0},
        ),
    ),
    # strategy against TF_CONFIG
    Case(
        "default-with-tf-config",
        "--strategy default",
        ("--strategy default runs on one machine but TF_CONFIG describes a cluster", "unset TF_CONFIG"),
        tf_config=cfg(),
    ),
    Case(
        "mirrored-with-tf-config",
        "--strategy mirrored",
        ("--strategy mirrored runs on one machine", "--strategy multiworker"),
        tf_config=cfg(),
    ),
    Case(
        "multiworker-without-tf-config",
        "--strategy multiworker",
        ("--strategy multiworker needs TF_CONFIG",),
        tf_config="",
    ),
    Case(
        "multiworker-blank-tf-config",
        "--strategy multiworker",
        ("--strategy multiworker needs TF_CONFIG",),
        tf_config="   ",
    ),
    # TF_CONFIG malformed
    Case("tf-config-not-json", "", (NOT_USABLE, "not valid JSON"), tf_config="{not json"),
    Case("tf-config-truncated-json", "", (NOT_USABLE, "not valid JSON"), tf_config=cfg()[:-5]),
    Case("tf-config-single-quotes", "", (NOT_USABLE, "not valid JSON"), tf_config="{'cluster': {}}"),
    Case("tf-config-a-list", "", (NOT_USABLE, "a JSON list, not an object"), tf_config="[1, 2]"),
    Case("tf-config-a-string", "", (NOT_USABLE, "a JSON str"), tf_config='"worker"'),
    Case("tf-config-a-number", "", (NOT_USABLE, "a JSON int"), tf_config="3"),
    Case("tf-config-null", "", (NOT_USABLE, "a JSON NoneType"), tf_config="null"),
    Case(
        "tf-config-no-cluster",
        "",
        (NOT_USABLE, 'no "cluster" object'),
        tf_config=json.dumps({"task": {"type": "worker", "index": 0}}),
    ),
    Case("tf-config-empty-cluster", "", (NOT_USABLE, 'no "cluster" object'), tf_config=cfg({})),
    Case(
        "tf-config-cluster-a-list",
        "",
        (NOT_USABLE, 'no "cluster" object'),
        tf_config=json.dumps({"cluster": ["a:1"], "task": {"type": "worker", "index": 0}}),
    ),
    Case(
        "tf-config-workers-a-string",
        "",
        (NOT_USABLE, "cluster[\"worker\"] is '127.0.0.1:1', not a list"),
        tf_config=cfg({"worker": "127.0.0.1:1"}),
    ),
    Case(
        "tf-config-workers-empty", "", (NOT_USABLE, 'cluster["worker"] is []'), tf_config=cfg({"worker": []})
    ),
    Case(
        "tf-config-address-no-port",
        "",
        (NOT_USABLE, 'cluster["worker"][1] is \'host2\', not a "host:port" address'),
        tf_config=cfg({"worker": ["host1:1", "host2"]}),
    ),
    Case("tf-config-address-port-0", "", (NOT_USABLE, "'host:0'"), tf_config=cfg({"worker": ["host:0"]})),
    Case(
        "tf-config-address-port-too-big",
        "",
        (NOT_USABLE, "'host:70000'"),
        tf_config=cfg({"worker": ["host:70000"]}),
    ),
    Case("tf-config-address-a-number", "", (NOT_USABLE, "is 2222, not a"), tf_config=cfg({"worker": [2222]})),
    Case(
        "tf-config-address-with-scheme",
        "",
        (NOT_USABLE, "'grpc://host:1'"),
        tf_config=cfg({"worker": ["grpc://host:1"]}),
    ),
    Case(
        "tf-config-address-with-space", "", (NOT_USABLE, "'host :1'"), tf_config=cfg({"worker": ["host :1"]})
    ),
    Case(
        "tf-config-address-twice",
        "",
        (NOT_USABLE, "address 127.0.0.1:1 given twice (worker 0 and worker 1)"),
        tf_config=cfg({"worker": ["127.0.0.1:1", "127.0.0.1:1"]}),
    ),
    Case(
        "tf-config-two-chiefs",
        "",
        (NOT_USABLE, "2 chiefs"),
        tf_config=cfg({"chief": ["a:1", "b:1"], "worker": ["c:1"]}),
    ),
    Case(
        "tf-config-ps-task",
        "",
        (NOT_USABLE, 'task type "ps" in the cluster', "chief and worker tasks only"),
        tf_config=cfg({"worker": ["a:1"], "ps": ["b:1"]}),
    ),
    Case(
        "tf-config-evaluator-task",
        "",
        (NOT_USABLE, 'task type "evaluator"'),
        tf_config=cfg({"worker": ["a:1"], "evaluator": ["b:1"]}),
    ),
    Case("tf-config-no-task", "", (NOT_USABLE, 'no "task" object'), tf_config=json.dumps({"cluster": TWO})),
    Case("tf-config-task-a-list", "", (NOT_USABLE, 'no "task" object'), tf_config=cfg(task=["worker", 0])),
    Case(
        "tf-config-task-type-missing",
        "",
        (NOT_USABLE, "task type None is not one of the cluster's task types (worker)"),
        tf_config=cfg(task={"index": 0}),
    ),
    Case(
        "tf-config-task-type-not-in-cluster",
        "",
        (NOT_USABLE, "task type 'chief' is not one of the cluster's task types"),
        tf_config=cfg(task={"type": "chief", "index": 0}),
    ),
    Case(
        "tf-config-task-type-typo",
        "",
        (NOT_USABLE, "task type 'Worker'"),
        tf_config=cfg(task={"type": "Worker", "index": 0}),
    ),
    Case(
        "tf-config-task-index-missing",
        "",
        (NOT_USABLE, "task index None is not a whole number"),
        tf_config=cfg(task={"type": "worker"}),
    ),
    Case(
        "tf-config-task-index-string",
        "",
        (NOT_USABLE, "task index '0' is not a whole number"),
        tf_config=cfg(task={"type": "worker", "index": "0"}),
    ),
    Case(
        "tf-config-task-index-float",
        "",
        (NOT_USABLE, "task index 1.5 is not a whole number"),
        tf_config=cfg(task={"type": "worker", "index": 1.5}),
    ),
    Case(
        "tf-config-task-index-bool",
        "",
        (NOT_USABLE, "task index True is not a whole number"),
        tf_config=cfg(task={"type": "worker", "index": True}),
    ),
    Case(
        "tf-config-task-index-out-of-range",
        "",
        (NOT_USABLE, 'task index 2 is not in cluster["worker"], which has 2 task(s)'),
        tf_config=cfg(task={"type": "worker", "index": 2}),
    ),
    Case(
        "tf-config-task-index-negative",
        "",
        (NOT_USABLE, "task index -1 is not in"),
        tf_config=cfg(task={"type": "worker", "index": -1}),
    ),
    # worker timeout
    Case(
        "worker-timeout-0",
        "--worker-timeout 0",
        ("--worker-timeout 0.0 must be a positive number of seconds",),
    ),
    Case("worker-timeout-negative", "--worker-timeout -5", ("--worker-timeout -5.0",)),
    Case("worker-timeout-nan", "--worker-timeout nan", ("--worker-timeout nan",)),
    Case("worker-timeout-inf", "--worker-timeout inf", ("--worker-timeout inf",)),
    Case(
        "worker-timeout-words",
        "--worker-timeout forever",
        ("--worker-timeout", "invalid float value: 'forever'"),
    ),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("strategy") / "ds", train=2, val=1, size=(32, 64), seed=3)


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_strategy_contradiction_is_refused_before_tensorflow(case, dataset, tmp_path, capsys, monkeypatch):
    if case.tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", case.tf_config)
    imported = "tensorflow" in sys.modules
    out = tmp_path / "out"
    argv = f"train --model {MODEL} --dataset {dataset} --steps 2 --batch 2 --crop 32x32 --out {out} --no-progress"
    argv = argv.split() + case.extra.split()
    if "--batch" in case.extra:
        i = argv.index("--batch")
        del argv[i : i + 2]
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    for needle in case.needles:
        assert needle in err, (needle, err)
    assert list(tmp_path.iterdir()) == []  # --out not even created
    assert imported or "tensorflow" not in sys.modules  # refused before TensorFlow was imported


def test_the_strategy_matrix_holds_its_cases():
    assert len(CASES) >= 55 and len({c.id for c in CASES}) == len(CASES)


def test_a_good_cluster_configuration_is_accepted_as_written():
    from bench.training.cluster import check_plan, parse_tf_config, peers_of

    text = cfg(
        {"chief": ["[::1]:2000"], "worker": ["node-1.example:2001", "10.0.0.3:2002"]},
        {"type": "worker", "index": 1},
        rpc_layer="grpc",
    )
    config = parse_tf_config(text)
    assert peers_of(config) == ["chief 0 ([::1]:2000)", "worker 0 (node-1.example:2001)"]
    assert check_plan("auto", cpu_replicas=None, batch=6, tf_config=config) == "multiworker"
    assert check_plan("mirrored", cpu_replicas=2, batch=4, tf_config=None) == "mirrored"
    assert check_plan("auto", cpu_replicas=None, batch=3, tf_config=None) == "auto"  # GPUs not counted yet


# ------------------------------------------------------------------- a worker whose peer never starts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_worker_waiting_for_a_peer_that_never_starts_names_it_and_gives_up(dataset, tmp_path):
    """Measured on a 2-core machine: the line after 3 s of waiting, exit 2 at the 15 s timeout (plus
    TensorFlow's start-up, ~10 s), nothing written."""
    peer = f"127.0.0.1:{free_port()}"
    config = {
        "cluster": {"worker": [f"127.0.0.1:{free_port()}", peer]},
        "task": {"type": "worker", "index": 0},
    }
    env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "out"
    argv = [
        "train",
        "--model",
        MODEL,
        "--dataset",
        str(dataset),
        "--steps",
        "2",
        "--batch",
        "2",
        "--crop",
        "32x32",
        "--out",
        str(out),
        "--no-progress",
        "--worker-timeout",
        "15",
    ]
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 2, done.stderr
    assert f"waiting for worker 1 ({peer}) to join (up to 15 s, --worker-timeout)" in done.stderr
    assert f"error: gave up after 15 s waiting for worker 1 ({peer})" in done.stderr
    assert "Traceback" not in done.stderr and 15 < seconds < 200
    assert list(tmp_path.iterdir()) == []  # nothing written, not even --out


def waiting_worker(dataset: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    """`bench train` as worker 0 of two whose peer never starts: it waits inside the strategy's C++ call."""
    config = {
        "cluster": {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]},
        "task": {"type": "worker", "index": 0},
    }
    env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = [
        *("train", "--model", MODEL, "--dataset", str(dataset), "--steps", "2", "--batch", "2"),
        *("--crop", "32x32", "--out", str(out), "--no-progress", *extra),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *argv],
        cwd=PROJECT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, said",
    [
        (signal.SIGINT, "stopped while waiting for worker 1"),
        (signal.SIGTERM, "stopped by SIGTERM while waiting"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_while_waiting_for_a_peer_stops_at_once(dataset, tmp_path, signum, said):
    """SIGTERM used to wait out --worker-timeout: TensorFlow's preemption notifier, installed inside the
    waiting call, took it and only set a flag."""
    job = waiting_worker(dataset, tmp_path / "out", "--worker-timeout", "120")
    try:
        line = job.stderr.readline()  # the waiting line: the worker is inside the blocked call
        assert "waiting for worker 1" in line, line
        job.send_signal(signum)
        began = time.monotonic()
        rest = job.stderr.read()
        job.wait(timeout=60)
    finally:
        job.kill()
    assert job.returncode == 2 and time.monotonic() - began < 10, rest  # _exit(2): no signal death
    assert said in rest and "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_worker_whose_sigint_is_ignored_still_gives_up_at_the_timeout(dataset, tmp_path):
    """A background job of a script ignores SIGINT, the watchdog's way to stop the wait: it used to wait
    forever; now SIGINT is handled for the length of the wait, so the worker exits 2, not by a signal."""
    job = waiting_worker(
        dataset,
        tmp_path / "out",
        "--worker-timeout",
        "6",
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        _, err = job.communicate(timeout=180)
    finally:
        job.kill()
    assert job.returncode == 2, err
    assert "error: gave up after 6 s waiting for worker 1" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
