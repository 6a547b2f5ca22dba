"""Two `bench train --strategy multiworker` workers started with other options are refused, on both."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorflow")

from tests.test_distribute import ENV, Job, free_ports, train_argv  # noqa: E402


@pytest.mark.slow  # two fresh TensorFlow processes meeting over the collective (no step trained): ~20 s
def test_workers_started_with_another_batch_or_seed_are_refused_on_both(tiny_dataset, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    extras = (("--seed", "0"), ("--batch", "4", "--seed", "1"))  # worker 1: another batch (8 given first)
    commands = []
    for index, extra in enumerate(extras):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        argv = train_argv(tiny_dataset, tmp_path / "out", "--strategy", "multiworker", *extra)
        commands.append((argv, {**ENV, "TF_CONFIG": json.dumps(config)}))
    job = Job(commands, tmp_path / "logs")
    assert job.wait() == [2, 2], job.output(0)[-3000:] + job.output(1)[-3000:]
    for index in range(2):
        text = job.output(index)
        assert "--batch (8 on worker 0, 4 on worker 1)" in text, text[-3000:]
        assert "--seed (0 on worker 0, 1 on worker 1)" in text
        assert f"this is worker {index}" in text and "Traceback" not in text
        assert "--steps (" not in text  # only the options that differ are named
    assert not (tmp_path / "out").exists()  # refused before anything is written
