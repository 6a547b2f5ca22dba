"""`bench perf model`'s figures in the field's language: per inference mode and precision, warm-up calls left
out, N timed calls, p50/p90 latency, images/s, peak memory, the device; rows in `results/perf.csv` and a
README-ready table beside mmsegmentation's published PSPNet-R50-D8 fps.

A call is what the prediction loop does with one frame, the model call only (no decoding, no writing):
`frame_logits` under the mode (whole frame; 713x713 windows overlapping by a third; PSPNet's six scales
with flip), through the same traced forward pass `OpenedModel.logits_function` gives the loop, and the
arg-max, fetched to the host (which waits for the device).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.common.paths import RESULTS_DIR
from bench.perf.latency import PUBLISHED, Latency, PeakMemory, time_calls
from bench.perf.timing import load_note

PERF_CSV = RESULTS_DIR / "perf.csv"
COLUMNS = (
    "date",
    "commit",
    "model",
    "preset",
    "mode",
    "precision",
    "input_size",
    "batch",
    "warmup",
    "iterations",
    "images_per_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "peak_memory_mb",
    "memory",
    "xla",
    "fold_bn",
    "device",
    "threads",
    "tensorflow",
)
"""The columns of results/perf.csv: each figure with everything it depends on."""


@dataclass(frozen=True)
class Case:
    model: str
    preset: str | None
    size: tuple[int, int]
    mode: str
    precision: str

    @property
    def label(self) -> str:
        name = self.model + (f":{self.preset}" if self.preset else "")
        return f"{name}@{self.size[0]}x{self.size[1]} {self.mode} {self.precision}"


def mode_call(case: Case, *, xla: bool, fold_bn: bool):
    """One call = one frame through the case's mode, as the prediction loop runs it (arg-max fetched)."""
    import numpy as np
    import tensorflow as tf

    from bench.sources.opener import OpenedModel
    from models import registry
    from models.inference_modes import InferenceSettings, frame_logits, scales_for
    from models.precision import precision_scope

    with precision_scope(case.precision):
        model = registry.build(case.model, preset=case.preset)
    if fold_bn:
        from models.batchnorm_folding import fold_batchnorm

        model = fold_batchnorm(model)
    forward = OpenedModel(model, jit=xla).logits_function()
    settings = InferenceSettings(
        mode=case.mode,
        scales=scales_for(case.mode, None),
        flip=case.mode == "multiscale",
        precision=case.precision,
    )
    image = tf.constant(np.random.default_rng(0).normal(size=(1, *case.size, 3)).astype("float32"))
    options = settings.mode_options()
    return lambda: np.argmax(frame_logits(forward, image, **options), axis=-1).astype(np.uint8)


def measure_case(case: Case, *, iterations: int, warmup: int, xla: bool, fold_bn: bool, gpu: bool):
    """(Latency, peak memory MB, what memory) of a case; memory is reset before its model is built."""
    memory = PeakMemory(gpu)
    memory.reset()
    call = mode_call(case, xla=xla, fold_bn=fold_bn)
    latency = time_calls(call, iterations, warmup=warmup)
    return latency, memory.peak_mb(), memory.kind


def row(case: Case, latency: Latency, peak_mb: float, memory: str, *, xla: bool, fold_bn: bool, env) -> dict:
    from bench.report.results import git_commit

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
        "model": case.model,
        "preset": case.preset or "",
        "mode": case.mode,
        "precision": case.precision,
        "input_size": f"{case.size[0]}x{case.size[1]}",
        "batch": latency.batch,
        "warmup": latency.warmup,
        "iterations": len(latency.seconds),
        "images_per_s": round(latency.images_per_s, 4),
        "latency_p50_ms": round(latency.p50_ms, 1),
        "latency_p90_ms": round(latency.p90_ms, 1),
        "peak_memory_mb": round(peak_mb, 1),
        "memory": memory,
        "xla": xla,
        "fold_bn": fold_bn,
        "device": env["device"],
        "threads": env["threads"],
        "tensorflow": env["tensorflow"],
    }


def append_rows(rows: list[dict], csv_path: str | Path = PERF_CSV) -> Path:
    """Append the rows to the perf CSV (atomically, under its lock; an older header gains new columns)."""
    from bench.report.results import append_row

    for r in rows:
        csv_path = append_row(csv_path, r, markdown=False, columns=COLUMNS)
    return Path(csv_path)


def readme_table(rows: list[dict]) -> str:
    """Markdown: our rows, then mmsegmentation's published figure with its device."""
    from bench.common.markdown import markdown_table

    def name(r: dict) -> str:
        if (r["model"], r["preset"]) == ("pspnet", ""):
            return "PSPNet-R50-D8 (ours)"
        return f"{r['model']}{':' + r['preset'] if r['preset'] else ''} (ours)"

    body = [
        [
            name(r),
            r["mode"],
            r["precision"],
            r["input_size"],
            r["device"],
            f"{r['images_per_s']:.3g}",
            f"{r['latency_p50_ms']:.0f}",
            f"{r['latency_p90_ms']:.0f}",
            f"{r['peak_memory_mb']:.0f} ({r['memory']})",
        ]
        for r in rows
    ]
    body.append(
        [
            f"{PUBLISHED['model']} (mmsegmentation, published)",
            PUBLISHED["mode"],
            PUBLISHED["precision"],
            PUBLISHED["size"],
            PUBLISHED["device"],
            f"{PUBLISHED['fps']:.3g}",
            "",
            "",
            "",
        ]
    )
    header = ["model", "mode", "precision", "input", "device", "images/s", "p50 ms", "p90 ms", "peak MB"]
    return markdown_table(header, body, right=range(5, 9))


def parse_modes(text: str | None) -> list[str]:
    """--modes "whole,slide" -> ["whole", "slide"]; default whole; an unknown mode is an error."""
    from data.errors import UserError
    from models.inference_modes import MODES

    modes = [m.strip() for m in (text or "whole").split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise UserError(f"--modes {text}: choose from {', '.join(MODES)}, comma-separated")
    return modes


def run_field(args, cases, env: dict, peaks: list[float], matmul_gflops) -> int:
    """Per case, mode and precision: p50/p90, images/s and peak memory (this module); the
    rows to --csv, and the README table beside mmsegmentation's published figure. `peaks`: the matmul
    GFLOP/s measured so far, `matmul_gflops(n)` measures another (bench/perf/model/forward.py)."""
    import tensorflow as tf

    from models import registry
    from models.flops import count_flops

    modes = parse_modes(args.modes)
    precisions = ("fp32", "bf16") if args.precision == "bf16" else ("fp32",)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    rows = []
    for name, preset, size in cases:
        gflop = count_flops(registry.build(name, preset=preset), *size) / 1e9
        for mode in modes:
            for precision in precisions:
                case = Case(name, preset, size, mode, precision)
                latency, peak_mb, memory = measure_case(
                    case,
                    iterations=args.warmup + args.repeats,
                    warmup=args.warmup,
                    xla=args.xla,
                    fold_bn=args.fold_bn,
                    gpu=gpu,
                )
                rows.append(row(case, latency, peak_mb, memory, xla=args.xla, fold_bn=args.fold_bn, env=env))
                efficiency = ""
                if mode == "whole" and precision == "fp32":
                    peaks.append(matmul_gflops(args.matmul_size))
                    rate = gflop * latency.images_per_s
                    efficiency = f"  {rate:.1f} GFLOP/s = {100 * rate / max(peaks):.1f}% of the matmul"
                print(
                    f"{case.label:<36s} {latency.images_per_s:8.3f} images/s  p50 {latency.p50_ms:7.0f} ms  "
                    f"p90 {latency.p90_ms:7.0f} ms  peak {peak_mb:7.0f} MB {memory}  "
                    f"({len(latency.seconds)} timed after {latency.warmup} warm-up){efficiency}",
                    flush=True,
                )
    if args.csv:
        print(f"wrote {len(rows)} rows to {append_rows(rows, args.csv)}")
    print()
    print(readme_table(rows), end="")
    print(f"{load_note()} at the end", flush=True)
    return 0
