"""`bench perf model`: bf16 against fp32, ours against the PyTorch peer, interleaved passes, ratios."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.perf import model as perf_model


def test_runners_take_turns_after_a_warm_up_and_one_that_cannot_run_is_reported():
    calls = []

    def runner(name, seconds):
        def run():
            calls.append(name)
            return perf_model.Timing(seconds, 2 * seconds)

        return run

    def unavailable():
        calls.append("peer bf16")
        raise perf_model.RunnerUnavailable("autocast missing")

    timings, failed = perf_model.interleaved_passes(
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
        "ours fp32": [perf_model.Timing(2.0, 4.0)] * 2,
        "ours bf16": [perf_model.Timing(1.0, 2.0)] * 2,
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
    assert perf_model.PARITY_PYTHON.is_file(), "no parity venv: run make venv-parity (or make perf-peer)"
    peer = perf_model.PeerProcess(str(perf_model.PARITY_PYTHON), (64, 128), batch=1, threads=1)
    try:
        assert peer.facts["params_without_aux"] == 46_610_803  # mmseg's PSPNet-R50-D8 without the aux head
        assert peer.facts["threads"] == 1
        assert peer.timing("fp32").wall > 0 and peer.timing("fp32").cpu > 0
        assert peer.timing("bf16").wall > 0  # torch's CPU autocast to bfloat16
        with pytest.raises(perf_model.RunnerUnavailable, match="unknown precision"):
            peer.timing("fp8")
    finally:
        peer.close()
    assert peer.process.returncode == 0
