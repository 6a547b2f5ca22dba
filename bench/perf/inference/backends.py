"""`python -m bench perf backends CHECKPOINT`: one model run every way this machine offers, in one run.

Each entry of `BACKENDS` (bench/perf/inference/backends_list.py) is opened, then all run the prediction
loop over the same frames taking turns (`interleaved_passes`); per backend: images/s (the loop's own
clock, median of the turns), CPU seconds a frame, peak memory during its passes (the device allocator's
peak on a GPU, else the process's resident set, which holds every backend's weights: compare the
differences), and its faithfulness against the first backend that runs (TensorFlow fp32): the share of
pixels whose arg-max agrees, and with `--dataset` the mIoU difference. The rows go to
`results/backends.csv` (this checkpoint's rows replaced) and a table.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
from pathlib import Path

from bench.inference.fastest import BACKENDS_CSV
from bench.perf.inference.setup import add_model_arguments, check_counts, frames
from data.errors import UserError

FIELDS = (
    "checkpoint",
    "backend",
    "frames",
    "input_size",
    "images_per_s",
    "cpu_s_per_frame",
    "peak_memory_mb",
    "argmax_agreement",
    "miou",
    "miou_delta",
    "device",
    "graph",
    "recipe",
    "note",
)


class Labels:
    """A sink keeping each frame's arg-max (the faithfulness check) without the logits."""

    needs_logits = False

    def reset(self) -> None:
        self.maps = []

    def process(self, sample, train_ids, logits) -> None:
        self.maps.append(train_ids.copy())

    def evaluate(self):
        return self.maps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, checkpoint_required=True)
    parser.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="an ONNX (or OpenVINO .xml) export of the same model: adds ONNX Runtime and OpenVINO rows",
    )
    parser.add_argument("--recipe", default=None, metavar="FILE", help="the --onnx file's recipe JSON")
    parser.add_argument("--out", default=str(BACKENDS_CSV), help=f"the CSV of rows (default {BACKENDS_CSV})")


def measure_backends(
    checkpoint: str,
    samples,
    size,
    *,
    repeats: int,
    scored: bool,
    graph: str | None = None,
    recipe=None,
    backends=None,
) -> list[dict]:
    """One row per backend (see FIELDS); backends that cannot run here have their reason in `note`."""
    from bench.evaluation.streaming import StreamingEvaluator
    from bench.inference.loop import predict_frames
    from bench.perf.inference.backends_list import BACKENDS, Context
    from bench.perf.latency import PeakMemory
    from bench.perf.timing import RunnerUnavailable, Timing, interleaved_passes, measure, median

    backends = BACKENDS if backends is None else backends
    context = Context(size, graph, recipe)
    opened, notes = {}, {}
    for backend in backends:
        try:
            opened[backend.name] = backend.open(checkpoint, context)
        except (RunnerUnavailable, UserError) as exc:  # cannot run here: its row says why
            notes[backend.name] = str(exc)
    import tensorflow as tf

    memory = PeakMemory(gpu=bool(tf.config.list_physical_devices("GPU")))
    peaks: dict[str, list[float]] = {name: [] for name in opened}
    last: dict[str, tuple] = {}
    n = len(samples)

    def runner(name):
        def run() -> Timing:
            sinks = [Labels()] + ([StreamingEvaluator()] if scored else [])
            memory.reset()
            try:
                timing, predicted = measure(
                    lambda: predict_frames(opened[name], samples, sinks=sinks, progress=False)
                )
            finally:
                for sink in sinks[1:]:
                    sink.close()
            peaks[name].append(memory.peak_mb())
            last[name] = predicted.results
            return Timing(predicted.stats["seconds"], timing.cpu / (n + 1))  # CPU: warm-up frame included

        return run

    times, failed = interleaved_passes({name: runner(name) for name in opened}, repeats)
    notes.update(failed)
    reference = next((name for name in times), None)
    rows = []
    for backend in backends:
        name = backend.name
        row = {"checkpoint": checkpoint, "backend": name, "frames": n, "input_size": f"{size[0]}x{size[1]}"}
        if name not in times:
            rows.append({**row, "note": notes.get(name, "did not run")})
            continue
        maps = last[name][0]
        agree = sum(int((a == b).sum()) for a, b in zip(maps, last[reference][0], strict=True))
        total = sum(m.size for m in maps)
        miou = last[name][1].miou if scored else math.nan
        ref_miou = last[reference][1].miou if scored else math.nan
        rows.append(
            {
                **row,
                "images_per_s": round(n / median([t.wall for t in times[name]]), 3),
                "cpu_s_per_frame": round(median([t.cpu for t in times[name]]), 3),
                "peak_memory_mb": round(max(peaks[name]), 1),
                "argmax_agreement": round(agree / total, 6),
                "miou": round(miou, 6) if scored else "",
                "miou_delta": round(miou - ref_miou, 6) if scored else "",
                "note": "reference" if name == reference else _graph_note(name, graph, checkpoint),
                **(
                    {"graph": _kept_graph(graph, checkpoint), "recipe": recipe or ""}
                    if "onnx" in name or "openvino" in name
                    else {}
                ),
            }
        )
    shutil.rmtree(context.folder, ignore_errors=True)  # the conversions and exports made for the table
    return rows


def write_rows(rows: list[dict], out: str | Path) -> Path:
    """`out` with these rows in place of the earlier rows of the same checkpoint, size and device (atomic)."""
    from bench.common.atomic import locked, write_text
    from bench.common.device import device_label

    out = Path(out)
    device = device_label()
    mine = {(r["checkpoint"], r["input_size"], r.get("device", device)) for r in rows}
    with locked(out):
        kept = []
        if out.exists():
            with out.open(newline="") as f:
                kept = [
                    r
                    for r in csv.DictReader(f)
                    if (r.get("checkpoint"), r.get("input_size"), r.get("device")) not in mine
                ]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept + [{"device": device, **r} for r in rows])
        write_text(out, buffer.getvalue())
    return out


def table(rows: list[dict]) -> list[str]:
    lines = [
        f"{'backend':24s} {'images/s':>9} {'CPU s/frame':>12} {'peak MB':>8} {'agreement':>10} {'dmIoU':>8}"
    ]
    for r in rows:
        if "images_per_s" not in r:
            lines.append(f"{r['backend']:24s} not run: {r['note']}")
            continue
        delta = f"{100 * r['miou_delta']:+8.2f}" if r["miou_delta"] != "" else f"{'-':>8}"
        lines.append(
            f"{r['backend']:24s} {r['images_per_s']:9.2f} {r['cpu_s_per_frame']:12.3f} "
            f"{r['peak_memory_mb']:8.0f} {100 * r['argmax_agreement']:9.3f}% {delta}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from bench.common.tensorflow_import import import_tensorflow
    from bench.perf.timing import load_note

    check_counts(args)
    tf = import_tensorflow()
    samples = frames(args)
    from data.pipeline import frame_size

    size = frame_size(samples[0].image)
    rows = measure_backends(
        args.checkpoint,
        samples,
        size,
        repeats=args.repeats,
        scored=bool(args.dataset),
        graph=args.onnx,
        recipe=args.recipe,
    )
    print(
        f"{args.checkpoint} on {len(samples)} frames of {size[0]}x{size[1]}; TensorFlow {tf.__version__}; "
        f"{load_note()}; agreement: pixels whose arg-max equals the reference's"
    )
    for line in table(rows):
        print(line)
    print(f"rows: {write_rows(rows, args.out)}")
    return 0


def _kept_graph(graph: str | None, checkpoint: str) -> str:
    """The graph file a row can be run again from (`--runtime auto`): the one given, or the checkpoint when
    it is one; "" for the export this table made of a Keras checkpoint (a temporary file)."""
    return graph or (checkpoint if checkpoint.endswith((".onnx", ".xml")) else "")


def _graph_note(name: str, graph: str | None, checkpoint: str) -> str:
    graph_row = "onnx" in name or "openvino" in name
    return "on an ONNX export made for this table" if graph_row and not _kept_graph(graph, checkpoint) else ""
