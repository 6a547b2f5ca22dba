"""`make gpu-check`: PSPNet-R50-D8 speed on a GPU, measured the way mmsegmentation publishes it.

Inference by mmsegmentation's `tools/analysis_tools/benchmark.py` convention: batch 1 at 1024x2048, the
model call only (forward, arg-max, the label map fetched to the host, as its `simple_test` returns it), each
call timed on its own and synchronised on the device (the host fetch waits for the device), the first
`WARMUP` calls left out, fps = (n - WARMUP) / (time of the others). In fp32, bf16 (Keras mixed_bfloat16) and
bf16 compiled with XLA; beside mmsegmentation's published 4.07 fps (fp32 on a V100). Then the trainer's own
step (`perf.training.steps.measure`: forward, backward with the auxiliary loss, SGD) at 512x1024 batch 8 in
bf16 + XLA, and with more than one GPU the mirrored weak scaling (batch 8 per GPU). The prediction loop
against the bare forward pass at 1024x2048 per sink set, and the backends table (TensorFlow fp32, bf16,
XLA; ONNX Runtime CUDA and TensorRT where installed), from bench/perf/inference/gpu_sections.py. The
figures go to `<out>.json` and `<out>.md` (a README-ready table).

`--dry-run` runs the same plumbing on the CPU with the tiny preset at tiny sizes and two logical CPU
devices for the scaling (the test suite runs it); its figures mean nothing. `make gpu-check` installs
`.venv-gpu` from requirements-gpu.txt once (a few minutes of downloads), then the check itself is meant to
finish in under 5 minutes on one GPU; the JSON records how long it took.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.common.paths import RESULTS_DIR
from bench.perf.latency import PUBLISHED, WARMUP, PeakMemory, time_calls

MODES = ("fp32", "bf16", "bf16+xla")
DEFAULT_OUT = RESULTS_DIR / "gpu-check"


@dataclass(frozen=True)
class Settings:
    """What is measured; the defaults are the real check, `DRY_RUN` the plumbing test."""

    model: str = "pspnet"
    preset: str | None = None  # the paper's PSPNet-R50-D8
    size: tuple[int, int] = (1024, 2048)
    iterations: int = 30  # model calls per mode, the first WARMUP of them not timed
    train_crop: tuple[int, int] = (512, 1024)
    train_batch: int = 8  # per replica
    train_steps: int = 10  # timed, after one warm-up step
    loop_frames: int = 4  # frames of the loop-vs-forward and backends sections (bench/perf/inference/)
    loop_repeats: int = 2  # turns of each contender there
    dry_run: bool = False


DRY_RUN = Settings(
    preset="tiny",
    size=(64, 128),
    iterations=WARMUP + 2,
    train_crop=(32, 64),
    train_batch=2,
    train_steps=1,
    loop_frames=2,
    loop_repeats=1,
    dry_run=True,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run the plumbing on the CPU with a tiny model and tiny sizes (figures mean nothing)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"model calls per inference mode, the first {WARMUP} not timed (default {Settings.iterations})",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="registry name or package.module:function instead of PSPNet (the test suite's dry run uses a "
        "tiny plugin model to stay fast)",
    )
    parser.add_argument("--preset", default=None, help="preset of --model ('none' for none)")
    parser.add_argument(
        "--out",
        default=None,
        help=f"write <out>.json and <out>.md (default {DEFAULT_OUT.relative_to(RESULTS_DIR.parent)}, "
        "with --dry-run a temporary-looking name beside it)",
    )


def inference(settings: Settings, mode: str, gpu: bool) -> dict[str, float]:
    """One mode's figures: a fresh model in its precision, its call compiled with XLA or not."""
    import tensorflow as tf

    from models import registry
    from models.precision import precision_scope

    precision, xla = mode.split("+")[0], mode.endswith("+xla")
    memory = PeakMemory(gpu)
    memory.reset()
    with precision_scope(precision):
        model = registry.build(settings.model, preset=settings.preset)
    images = tf.random.normal([1, *settings.size, 3], seed=0)

    @tf.function(jit_compile=xla)
    def call(x):
        logits = model(x, training=False)
        return tf.cast(tf.argmax(logits, axis=-1), tf.uint8)

    latency = time_calls(lambda: call(images).numpy(), settings.iterations)
    return {
        "fps": latency.images_per_s,
        "p50_ms": latency.p50_ms,
        "p90_ms": latency.p90_ms,
        "timed_calls": len(latency.seconds),
        "peak_memory_mb": memory.peak_mb(),
        "memory": memory.kind,
    }


def training(settings: Settings, devices: list[str], gpu: bool) -> float:
    """Images/s of the trainer's step mirrored over `devices` (bf16 + XLA on a single GPU)."""
    from bench.perf.training.steps import measure

    return measure(
        settings.model,
        settings.preset,
        devices,
        per_replica_batch=settings.train_batch,
        crop=settings.train_crop,
        steps=settings.train_steps,
        accelerate=gpu,
    )


def run_check(settings: Settings) -> dict:
    """Every figure of the check, as the JSON stores it."""
    began = time.perf_counter()
    from bench.common.tensorflow_import import import_tensorflow

    tf = import_tensorflow(training=True)  # it trains too: on a CPU (--dry-run) oneDNN off, as bench train
    import keras

    if settings.dry_run:
        from bench.training.strategy import split_cpu

        cpu_devices = split_cpu(2)  # before TensorFlow starts: two logical devices for the scaling run
    from data.errors import UserError

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not settings.dry_run:
        raise UserError(
            "no GPU visible to TensorFlow: run `make gpu-check` on a CUDA machine (it installs .venv-gpu "
            "from requirements-gpu.txt), or pass --dry-run to check the plumbing on the CPU"
        )
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    from bench.common.device import environment

    on_gpu = bool(gpus) and not settings.dry_run
    build = tf.sysconfig.get_build_info()
    report = {
        "settings": asdict(settings),
        "environment": {
            **environment(),
            "cuda": build.get("cuda_version"),
            "cudnn": build.get("cudnn_version"),
        },
        "convention": f"batch 1, first {WARMUP} calls warm-up, model call only, synchronised, "
        "fps = (n - warm-up) / time",
        "published": PUBLISHED,
        "inference": {},
    }
    for mode in MODES:
        report["inference"][mode] = inference(settings, mode, on_gpu)
        keras.backend.clear_session()  # the mode's model and compiled call go before the next one's
        gc.collect()
        _progress(f"inference {mode}: {report['inference'][mode]['fps']:.2f} fps", began)
    from bench.perf.inference import gpu_sections

    sections = (settings.model, settings.preset, settings.size)
    counts = {"frames": settings.loop_frames, "repeats": settings.loop_repeats}
    report["loop"] = gpu_sections.loop_section(*sections, **counts)
    ratio = report["loop"]["ratios"].get("loop, sinks: evaluation", float("nan"))
    _progress(f"loop with the evaluation sink: {ratio:.2f} x the forward pass", began)
    keras.backend.clear_session()
    report["backends"] = gpu_sections.backends_section(*sections, **counts)
    _progress(f"backends: {sum('images_per_s' in r for r in report['backends'])} ran", began)
    keras.backend.clear_session()
    gc.collect()
    devices = [f"/gpu:{i}" for i in range(len(gpus))] if on_gpu else cpu_devices
    one = training(settings, devices[:1], on_gpu)
    report["training"] = {
        "precision": "bf16+xla" if on_gpu else "fp32",
        "batch": settings.train_batch,
        "crop": list(settings.train_crop),
        "images_per_s": one,
    }
    _progress(f"training: {one:.2f} images/s", began)
    if len(devices) > 1:
        many = training(settings, devices, on_gpu)
        report["scaling"] = {
            "replicas": len(devices),
            "batch_per_replica": settings.train_batch,
            "images_per_s": many,
            "efficiency": many / (len(devices) * one),
            "note": "mirrored, bf16 without XLA (as bench train runs several replicas)"
            if on_gpu
            else "logical CPU devices sharing the same cores: plumbing only",
        }
        _progress(f"{len(devices)} replicas: {many:.2f} images/s", began)
    report["seconds"] = time.perf_counter() - began
    return report


def _progress(text: str, began: float) -> None:
    print(f"[{time.perf_counter() - began:6.1f} s] {text}", flush=True)


def markdown(report: dict) -> str:
    """The README-ready table of a report."""
    env, s, pub = report["environment"], report["settings"], report["published"]
    h, w = s["size"]
    lines = [
        f"{_model_name(s)}{' (dry run, figures mean nothing)' if s['dry_run'] else ''} at "
        f"{h}x{w}, {report['convention']}; {env['device']}, TensorFlow {env['tensorflow']}"
        + (f", CUDA {env['cuda']}, cuDNN {env['cudnn']}" if env.get("cuda") else ""),
        "",
        "| implementation | device | precision | fps | p50 ms | p90 ms | peak memory MB |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for mode, f in report["inference"].items():
        lines.append(
            f"| ours | {env['device']} | {mode} | {f['fps']:.2f} | {f['p50_ms']:.1f} | {f['p90_ms']:.1f} | "
            f"{f['peak_memory_mb']:.0f} |"
        )
    lines.append(
        f"| mmsegmentation (published) | {pub['device']} | {pub['precision']} | {pub['fps']:.2f} | | | |"
    )
    t = report["training"]
    lines += [
        "",
        f"Training (the trainer's step, {t['precision']}), batch {t['batch']} at {t['crop'][0]}x"
        f"{t['crop'][1]}: {t['images_per_s']:.2f} images/s.",
    ]
    if "scaling" in report:
        c = report["scaling"]
        lines.append(
            f"Mirrored over {c['replicas']} replicas ({c['batch_per_replica']} images each): "
            f"{c['images_per_s']:.2f} images/s, {100 * c['efficiency']:.0f}% scaling efficiency "
            f"({c['note']})."
        )
    from bench.perf.inference.gpu_sections import markdown as loop_markdown

    lines += loop_markdown(report)
    lines.append(f"The check took {report['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def _model_name(settings: dict) -> str:
    if (settings["model"], settings["preset"]) == ("pspnet", None):
        return "PSPNet-R50-D8"
    return settings["model"] + (f":{settings['preset']}" if settings["preset"] else "")


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    from bench.common.atomic import write_text

    json_path = write_text(out.with_name(out.name + ".json"), json.dumps(report, indent=2) + "\n")
    return json_path, write_text(out.with_name(out.name + ".md"), markdown(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.gpu_check", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    from bench.common.atomic import check_writable
    from data.errors import UserError

    settings = DRY_RUN if args.dry_run else Settings()
    try:
        if args.iterations is not None:
            if args.iterations <= WARMUP:
                raise UserError(f"--iterations must be more than the {WARMUP} warm-up calls")
            settings = replace(settings, iterations=args.iterations)
        if args.model or args.preset:
            preset = args.preset if args.preset not in ("", "none") else None
            settings = replace(settings, model=args.model or settings.model, preset=preset)
        out = (
            Path(args.out)
            if args.out
            else DEFAULT_OUT.with_name(DEFAULT_OUT.name + ("-dry-run" if args.dry_run else ""))
        )
        check_writable(out.with_name(out.name + ".json"), "--out", folder=False)
        report = run_check(settings)
        paths = write_report(report, out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(report), end="")
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
