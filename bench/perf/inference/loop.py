"""`python -m bench perf loop`: the prediction loop's images/s next to the bare forward pass's, in one run.

The contenders take turns (`interleaved_passes`), so machine load touches all alike: the bare forward pass
on the decoded frames, the pipelined loop (bench/inference/loop.py) with each sink set, and the plain
frame-by-frame loop with the evaluation sink (what the loop was before). Then each stage alone, one after
the other (bench/perf/inference/stages.py), and its share: what the loop has to hide. Targets (issue 29):
the loop with the evaluation sink at >= 0.90 x the forward's images/s, with calibration and Boundary IoU
too at >= 0.80; where one is missed, the note says which host work could not hide and on how many idle cores.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.perf.inference.setup import add_model_arguments, check_counts, frames, model_name, open_model
from bench.perf.inference.stages import close_sinks, make_sink, stage_profile
from data.errors import UserError

SINK_SETS = {
    "none": (),
    "evaluation": ("evaluation",),
    "calibration": ("evaluation", "calibration"),
    "boundary": ("evaluation", "calibration", "boundary"),
    "png": ("evaluation", "calibration", "boundary", "png"),
}
"""Each set adds to the one before: --sinks names sets by their last sink."""

TARGETS = {"evaluation": 0.90, "boundary": 0.80}


def sink_sets(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in SINK_SETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"sink sets {', '.join(bad) or text!r}: choose from {', '.join(SINK_SETS)}"
        )
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--sinks",
        type=sink_sets,
        default=tuple(SINK_SETS),
        help="sink sets, comma-separated, each adding to the one before: " + ", ".join(SINK_SETS) + " (all)",
    )
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass in the loop (1)")


def measure_loop(opened, samples, sets, *, batch: int, repeats: int) -> dict:
    """{"rates": {contender: images/s (median of the turns)}, "stages": {stage: s/frame}, "cores": ...}."""
    from bench.inference.loop import predict_frames
    from bench.perf.inference.stages import _synced
    from bench.perf.timing import Timing, interleaved_passes, measure, median
    from data.pipeline import eval_dataset
    from models.inference_modes import InferenceSettings

    n = len(samples)
    images = list(eval_dataset(samples, with_labels=False, input_spec=opened.input_spec))
    forward = opened.logits_function()
    settings = InferenceSettings(batch=batch)

    def bare() -> Timing:
        return measure(lambda: [_synced(forward(x)) for x in images])[0]

    def loop(names, pipelined=True):
        def run() -> Timing:
            with tempfile.TemporaryDirectory() as folder:
                sinks = [make_sink(name, folder) for name in names]
                try:
                    timing, predicted = measure(
                        lambda: predict_frames(
                            opened, samples, settings, sinks, progress=False, pipelined=pipelined
                        )
                    )
                finally:
                    close_sinks(sinks)
            # the loop's own clock leaves out its warm-up batch; its CPU clock is shared out alike
            share = n / (n + batch)
            return Timing(predicted.stats["seconds"], timing.cpu * share)

        return run

    runners = {"forward pass (bare)": bare}
    for name in sets:
        runners[f"loop, sinks: {name}"] = loop(SINK_SETS[name])
    if "evaluation" in sets:
        runners["plain loop, sinks: evaluation"] = loop(SINK_SETS["evaluation"], pipelined=False)
    times, _ = interleaved_passes(runners, repeats)
    rates = {name: n / median([t.wall for t in passes]) for name, passes in times.items()}
    cpu_rates = {name: n / median([t.cpu for t in passes]) for name, passes in times.items()}
    forward_times = times["forward pass (bare)"]
    cores_busy = median([t.cpu / t.wall for t in forward_times])
    stage_cpu: dict[str, float] = {}
    stages = stage_profile(opened, samples, stage_cpu)
    return {
        "rates": rates,
        "cpu_rates": cpu_rates,
        "stages": stages,
        "stage_cpu": stage_cpu,
        "cores_busy": cores_busy,
    }


def report(figures: dict, sets) -> list[str]:
    from bench.common.device import cpu_count

    rates, stages, cpu_rates = figures["rates"], figures["stages"], figures["cpu_rates"]
    base, cpu_base = rates["forward pass (bare)"], cpu_rates["forward pass (bare)"]
    lines = [
        f"{'':34s} {'images/s':>9} {'x forward':>10} {'img/CPU-s':>10} {'x forward':>10}  target (wall)",
    ]
    for name, value in rates.items():
        set_name = name.rsplit(": ", 1)[-1] if name.startswith("loop") else None
        target = TARGETS.get(set_name)
        verdict = ""
        if target is not None:
            verdict = f">= {target:.2f} {'met' if value / base >= target else 'MISSED'}"
        cpu = cpu_rates[name]
        lines.append(
            f"{name:34s} {value:9.2f} {value / base:10.2f} {cpu:10.2f} {cpu / cpu_base:10.2f}  {verdict}"
        )
    lines.append(
        "(img/CPU-s: images per CPU second of this process, all its threads: what the cores give when "
        "none is idle, as on a loaded machine)"
    )
    stage_cpu = figures["stage_cpu"]
    total, total_cpu = sum(stages.values()), sum(stage_cpu.values())
    lines += ["", f"{'stage, alone (one after the other)':40s} {'ms/frame':>9} {'CPU ms':>7} {'share':>6}"]
    for name, seconds in stages.items():
        share = f"{100 * seconds / total:5.0f}%"
        lines.append(f"{name:40s} {seconds * 1e3:9.1f} {stage_cpu[name] * 1e3:7.1f} {share}")
    lines.append(f"(share: of the wall time; of the CPU time the shares are {_shares(stage_cpu, total_cpu)})")
    cores = cpu_count()
    forward = stages["forward"]
    idle = max(0.0, cores - figures["cores_busy"]) * forward
    for set_name, target in TARGETS.items():
        key = f"loop, sinks: {set_name}"
        if key not in rates or rates[key] / base >= target:
            continue
        host_stages = (
            "decode + normalise",
            "arg-max on the device",
            *(f"sink: {s}" for s in SINK_SETS[set_name]),
        )
        host = sum(stage_cpu[s] for s in host_stages)
        largest = max(host_stages, key=stage_cpu.get)
        lines.append(
            f"note: {set_name} misses {target:.2f}: {host * 1e3:.0f} CPU ms of host work a frame (most: "
            f"{largest}, {stage_cpu[largest] * 1e3:.0f} ms) against {idle * 1e3:.0f} core-ms left idle by "
            f"the forward pass ({figures['cores_busy']:.1f} of {cores} cores busy for {forward * 1e3:.0f} ms)"
        )
    return lines


def _shares(values: dict[str, float], total: float) -> str:
    return ", ".join(f"{name} {100 * v / total:.0f}%" for name, v in values.items())


def run(args: argparse.Namespace) -> int:
    from bench.common.tensorflow_import import import_tensorflow
    from bench.perf.timing import load_note

    check_counts(args)
    if args.batch < 1:
        raise UserError(f"--batch {args.batch}: give 1 or more")
    tf = import_tensorflow()
    opened = open_model(args)
    samples = frames(args)
    figures = measure_loop(opened, samples, args.sinks, batch=args.batch, repeats=args.repeats)
    h, w = args.size if not args.dataset else ("", "")
    where = f"at {h}x{w}" if not args.dataset else f"on {args.dataset}"
    print(
        f"{model_name(opened)} {where}, {len(samples)} frames, batch {args.batch}; "
        f"TensorFlow {tf.__version__}; {load_note()}"
    )
    for line in report(figures, args.sinks):
        print(line)
    return 0
