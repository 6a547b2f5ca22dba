"""`TF_CONFIG` and the strategy flags, checked before TensorFlow starts (no TensorFlow here).

A contradiction between `--strategy`, `--cpu-replicas`, `--batch` and `TF_CONFIG` would otherwise show
only after TensorFlow's start-up, as a C++ error, or never: a `--cpu-replicas 0` or a worker that trains
alone because `--strategy default` ignores its `TF_CONFIG`. `check_plan` finds them all first.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from data.errors import UserError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
TASK_TYPES = ("chief", "worker")  # the tasks of MultiWorkerMirroredStrategy (no ps, no evaluator)
EXAMPLE = (
    'JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}} '
    "(the same cluster on every worker, each with its own index)"
)
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _bad(problem: str) -> UserError:
    return UserError(f"TF_CONFIG is not a usable cluster configuration: {problem}; set it to {EXAMPLE}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_tf_config(text: str) -> dict[str, Any] | None:
    """The checked cluster configuration in `text` (None when blank); a UserError naming what is wrong."""
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise _bad(f"not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _bad(f"a JSON {type(config).__name__}, not an object")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _bad('no "cluster" object naming the workers')
    seen: dict[str, str] = {}
    for kind, members in cluster.items():
        if kind not in TASK_TYPES:
            runs = " and ".join(TASK_TYPES)
            raise _bad(f'task type "{kind}" in the cluster: bench train runs {runs} tasks only')
        if not isinstance(members, list) or not members:
            raise _bad(f'cluster["{kind}"] is {members!r}, not a list of "host:port" addresses')
        for i, address in enumerate(members):
            match = _ADDRESS.match(address) if isinstance(address, str) else None
            if not match or not 0 < int(match.group(2)) < 65536:
                raise _bad(f'cluster["{kind}"][{i}] is {address!r}, not a "host:port" address')
            if address in seen:
                twice = f"{seen[address]} and {kind} {i}"
                raise _bad(f"address {address} given twice ({twice}): give each task its own port")
            seen[address] = f"{kind} {i}"
    if len(cluster.get("chief", [])) > 1:
        raise _bad(f"{len(cluster['chief'])} chiefs: a cluster has at most one")
    if not isinstance(task, dict):
        raise _bad('no "task" object (this process\'s "type" and "index")')
    kind, index = task.get("type"), task.get("index")
    if not isinstance(kind, str) or kind not in cluster:
        raise _bad(f"task type {kind!r} is not one of the cluster's task types ({', '.join(cluster)})")
    if not _is_int(index):
        raise _bad(f"task index {index!r} is not a whole number")
    if not 0 <= index < len(cluster[kind]):
        raise _bad(f'task index {index} is not in cluster["{kind}"], which has {len(cluster[kind])} task(s)')
    return config


def read_tf_config() -> dict[str, Any] | None:
    """The checked `TF_CONFIG` of this process (None when unset or blank)."""
    return parse_tf_config(os.environ.get("TF_CONFIG", ""))


def workers_of(config: dict[str, Any]) -> int:
    """The number of training processes in the cluster (chief and workers)."""
    return sum(len(config["cluster"].get(kind, [])) for kind in TASK_TYPES)


def peers_of(config: dict[str, Any]) -> list[str]:
    """The other tasks of the cluster, as `worker 1 (host:port)`, for messages about waiting for them."""
    me = (config["task"]["type"], config["task"]["index"])
    return [
        f"{kind} {i} ({address})"
        for kind, members in config["cluster"].items()
        for i, address in enumerate(members)
        if (kind, i) != me
    ]


def choose(kind: str, *, tf_config: dict | None, gpus: int, cpu_replicas: int | None) -> str:
    """The concrete strategy for a requested one ("auto" resolved), every contradiction refused."""
    if kind not in STRATEGIES:
        raise UserError(f"--strategy {kind}: choose one of {', '.join(STRATEGIES)}")
    if cpu_replicas is not None and (not _is_int(cpu_replicas) or cpu_replicas < 1):
        raise UserError(
            f"--cpu-replicas {cpu_replicas} must be a whole number of at least 1 (the logical CPU devices "
            f"to mirror over, 2 or more for data parallelism); leave it out for one replica"
        )
    resolved = kind
    if kind == "auto":
        if tf_config:
            resolved = "multiworker"
        else:
            resolved = "mirrored" if gpus >= 2 or (cpu_replicas or 1) >= 2 else "default"
    if resolved in ("mirrored", "default") and tf_config:
        raise UserError(
            f"--strategy {kind} runs on one machine but TF_CONFIG describes a cluster (this process would "
            f"train alone): unset TF_CONFIG, or use --strategy multiworker"
        )
    if resolved == "multiworker" and not tf_config:
        raise UserError(
            "--strategy multiworker needs TF_CONFIG (the cluster's worker addresses and this task's "
            "index); set it on every worker, or use --strategy mirrored on one machine"
        )
    if cpu_replicas and cpu_replicas > 1 and resolved != "mirrored":
        why = " (TF_CONFIG is set)" if tf_config and kind == "auto" else ""
        raise UserError(
            f"--cpu-replicas {cpu_replicas} needs --strategy mirrored (or auto), not {resolved}{why}"
        )
    return resolved


def check_plan(
    kind: str, *, cpu_replicas: int | None, batch: int, tf_config: dict | None, worker_timeout: float = 300.0
) -> str:
    """Refuse, before TensorFlow starts, what `make_distribution` would refuse or get wrong; returns the
    strategy as far as it is known without counting GPUs ("auto" without TF_CONFIG stays "auto")."""
    resolved = choose(kind, tf_config=tf_config, gpus=0, cpu_replicas=cpu_replicas)
    if kind == "auto" and resolved == "default":
        resolved = "auto"  # two local GPUs would make it mirrored: known once TensorFlow counts them
    replicas, what = 1, ""
    if resolved == "mirrored" and cpu_replicas:
        replicas, what = cpu_replicas, f"--cpu-replicas {cpu_replicas}"
    elif resolved == "multiworker":
        replicas, what = workers_of(tf_config), f"the {workers_of(tf_config)} workers of TF_CONFIG"
    if _is_int(batch) and batch % replicas:
        raise UserError(
            f"--batch {batch} is the global batch and must split evenly over {what}: use a multiple of "
            f"{replicas}"
        )
    if not (isinstance(worker_timeout, int | float) and 0 < worker_timeout < float("inf")):
        raise UserError(f"--worker-timeout {worker_timeout} must be a positive number of seconds, e.g. 300")
    if resolved == "multiworker":
        check_own_address(tf_config)
    return resolved


def check_own_address(config: dict[str, Any]) -> None:
    """This task's own `host:port` must be free to listen on: a port in use would otherwise fail deep in
    TensorFlow's gRPC server start (or wait for the other workers first), with no word of which port."""
    import errno
    import socket

    task = config["task"]
    address = config["cluster"][task["type"]][task["index"]]
    port = int(address.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            why = (
                "is in use by another process"
                if exc.errno == errno.EADDRINUSE
                else f"cannot be used ({exc.strerror})"
            )
            raise UserError(
                f"TF_CONFIG: this task's address {address} ({task['type']} {task['index']}): port {port} "
                f"{why}; give this task a free port in TF_CONFIG (and the same list to every worker)"
            ) from None
