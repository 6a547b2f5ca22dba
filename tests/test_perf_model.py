"""`bench perf model`: bf16 against fp32, ours against the PyTorch peer, interleaved passes, ratios."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.perf import timing
from bench.perf.model import peer as perf_peer


def test_runners_take_turns_after_a_warm_up_and_one_that_cannot_run_is_reported():
    calls = []

    def runner(name, seconds):
        def run():
            calls.append(name)
            return timing.Timing(seconds, 2 * seconds)

        return run

    def unavailable():
        calls.append("peer bf16")
        raise timing.RunnerUnavailable("autocast missing")

    timings, failed = timing.interleaved_passes(
        {
            "ours fp32": runner("ours fp32", 2.0),
            "peer bf16": unavailable,
            "ours bf16": runner("ours bf16", 1.0),
        },
        repeats=2,
    )
    # warm-up round, then two timed rounds, the runners alternating; the failed one is tried once
    assert calls == ["ours fp32", "peer bf16", "ours bf16"] + ["ours fp32", "ours bf16"] * 2
    assert timings == {
        "ours fp32": [timing.Timing(2.0, 4.0)] * 2,
        "ours bf16": [timing.Timing(1.0, 2.0)] * 2,
    }
    assert failed == {"peer bf16": "autocast missing"}


def test_the_peer_only_times_the_network_it_ports(capsys):
    assert main(["perf", "model", "pspnet:cpu@64x128", "--peer", "mmseg"]) == 2
    assert "--peer mmseg times mmsegmentation's PSPNet-R50-D8" in capsys.readouterr().err


def test_a_missing_parity_venv_says_how_to_build_it(tmp_path, capsys):
    argv = ["perf", "model", "pspnet@64x128", "--peer", "mmseg", "--peer-python", str(tmp_path / "python")]
    assert main(argv) == 2
    assert "make venv-parity" in capsys.readouterr().err


@pytest.mark.slow
def test_bf16_is_timed_against_fp32_and_the_ratio_printed(capsys):
    pytest.importorskip("tensorflow")
    assert main(["perf", "model", "pspnet:tiny@64x128", "--precision", "bf16", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "ours fp32" in out and "ours bf16" in out and "precision bf16" in out
    assert "speed ours bf16 / ours fp32: " in out and "target" not in out.split("speed")[-1]  # R50 only


@pytest.mark.peer
def test_the_mmseg_peer_answers_timed_passes_in_both_precisions():
    assert perf_peer.PARITY_PYTHON.is_file(), "no parity venv: run make venv-parity (or make perf-peer)"
    peer = perf_peer.PeerProcess(str(perf_peer.PARITY_PYTHON), (64, 128), batch=1, threads=1)
    try:
        assert peer.facts["params_without_aux"] == 46_610_803  # mmseg's PSPNet-R50-D8 without the aux head
        assert peer.facts["threads"] == 1
        assert peer.timing("fp32").wall > 0 and peer.timing("fp32").cpu > 0
        assert peer.timing("bf16").wall > 0  # torch's CPU autocast to bfloat16
        with pytest.raises(timing.RunnerUnavailable, match="unknown precision"):
            peer.timing("fp8")
    finally:
        peer.close()
    assert peer.process.returncode == 0


def test_measure_times_one_call_and_returns_its_value():
    import time

    def sleep_then_answer():
        time.sleep(0.05)
        return 42

    took, value = timing.measure(sleep_then_answer)
    assert value == 42 and 0.05 <= took.wall < 5 and 0 <= took.cpu < took.wall
    assert timing.best_seconds(lambda: time.sleep(0.01), repeats=3)[0] >= 0.01
    assert timing.rate(10, 2.0) == 5.0 and timing.median([3.0, 1.0, 2.0]) == 2.0
