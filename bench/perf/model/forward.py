"""`python -m bench perf model`: forward images/s of registry models and their GFLOP/s against a matmul.

The ratio to a large float32 matmul measured in the same process says how close the network runs to what
this machine's BLAS can do (target: at least 50% on CPU), independent of how loaded or fast the machine is.
Default cases (`DEFAULT_CASES`): the paper's pspnet (ResNet-50) at 512x1024, and the pspnet and fcn CPU
presets at the embedded dataset's resolution.

`--precision bf16` times the float32 model too, pass for pass in turn with the bfloat16 one, and prints the
speed ratio (target on an AVX512-BF16 CPU for PSPNet-R50-D8: at least 1.8x). `--peer mmseg` adds
mmsegmentation's own PSPNet-R50-D8 on PyTorch (perf/peers/mmseg_forward.py, in the parity venv) on the same
input size and thread count, its passes interleaved with ours so that both see the same machine load, and
prints our speed over its (target: ours in bf16 at least 2x mmseg in fp32).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bench.arguments import add_source_arguments
from bench.common.paths import PROJECT_ROOT
from bench.perf.model.cases import DEFAULT_CASES, parse_case, parse_train_step
from bench.perf.model.peer import PARITY_PYTHON, PeerProcess
from bench.perf.timing import Timing, best_seconds, interleaved_passes, load_note, median, timed
from data.errors import UserError
from data.sizes import size_argument
from models.precision import PRECISIONS

PEERS = ("mmseg",)
BF16_SPEEDUP_TARGET = 1.8
PEER_SPEEDUP_TARGET = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="MODEL[:PRESET]@HxW",
        help=f"what to time (default: {' '.join(DEFAULT_CASES)})",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="time whole frames of this checkpoint instead of registry cases (any `bench predict "
        "--checkpoint`, a LiteRT .tflite or an .onnx/.xml graph included), at --size",
    )
    parser.add_argument(
        "--size", type=size_argument, default=(1024, 2048), help="with --checkpoint: frame HxW (1024x2048)"
    )
    parser.add_argument("--batch", type=int, default=1, help="images per forward pass (1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes per case (3)")
    parser.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n float32 matmul (4096)")
    parser.add_argument("--xla", action="store_true", help="compile the forward pass with XLA (jit_compile)")
    parser.add_argument(
        "--train-step",
        metavar="BxHxW",
        help="also time one training step (forward+backward+SGD) at this batch and crop, e.g. 8x256x256",
    )
    parser.add_argument(
        "--fold-bn",
        action="store_true",
        help="fold BatchNorm into the preceding convolutions (inference graph)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32, or bf16 (then fp32 is timed too, interleaved, and the speed ratio printed)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="intra-op threads, ours and the peer's (default: all cores)"
    )
    add_source_arguments(parser, threads=False)  # --threads above is the graph runtime's too
    parser.add_argument(
        "--peer",
        choices=PEERS,
        default=None,
        help="also time mmsegmentation's own PSPNet-R50-D8 (PyTorch, .venv-parity) on the same input",
    )
    parser.add_argument(
        "--modes",
        default=None,
        help="inference modes to time, comma-separated: whole, slide, multiscale (+flip); each gives p50/p90 "
        "latency, images/s and peak memory (default whole; with --precision bf16 both precisions, each "
        "on its own, instead of the interleaved bf16/fp32 ratio)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="calls left out before the --repeats timed ones (default 1; mmsegmentation's benchmark uses 5)",
    )
    parser.add_argument(
        "--csv",
        default=None,
        metavar="FILE",
        help="append one row per case, mode and precision to FILE (e.g. results/perf.csv)",
    )
    parser.add_argument(
        "--peer-python",
        default=str(PARITY_PYTHON),
        help=f"interpreter with torch and mmsegmentation (default {PARITY_PYTHON.relative_to(PROJECT_ROOT)})",
    )


def matmul_gflops(n: int, repeats: int = 3, precision: str = "fp32") -> float:
    """GFLOP/s of an n x n matmul: float32 (the better of TensorFlow's and numpy's BLAS) or bfloat16."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    ta, tb = tf.cast(a, dtype), tf.cast(b, dtype)
    matmul = tf.function(lambda: tf.linalg.matmul(ta, tb))
    best, _ = best_seconds(lambda: matmul().numpy(), repeats)
    if precision == "fp32":
        best = min(best, best_seconds(lambda: a @ b, repeats)[0])
    return 2.0 * n**3 / best / 1e9


def time_train_step(name: str, preset: str | None, batch: int, size: tuple[int, int], repeats: int) -> float:
    """Best seconds of one step of the trainer's own train step (forward, backward with the auxiliary
    loss, SGD update with weight decay): what `bench train` runs, not a copy of it."""
    import tensorflow as tf

    from bench.training.train_step import make_optimizer, make_train_step
    from models import registry

    model = registry.build(name, preset=preset, aux_head=True)
    step = make_train_step(model, make_optimizer(0.01, steps=1000))
    images = tf.random.normal([batch, *size, 3])
    labels = tf.random.uniform([batch, *size], 0, 19, tf.int32)
    best, _ = best_seconds(lambda: step(images, labels)["loss"].numpy(), repeats)
    return best


def build_forward(
    name: str,
    preset: str | None,
    size: tuple[int, int],
    *,
    batch: int,
    xla: bool,
    fold_bn: bool,
    precision: str = "fp32",
) -> tuple[Callable[[], object], object]:
    """(a function running one forward pass on a fixed random batch, the model) of a registry model."""
    import numpy as np
    import tensorflow as tf

    from models import registry
    from models.precision import precision_scope

    with precision_scope(precision):
        model = registry.build(name, preset=preset)
    if fold_bn:
        from models.batchnorm_folding import fold_batchnorm

        model = fold_batchnorm(model)
    images = tf.constant(np.random.default_rng(0).normal(size=(batch, *size, 3)).astype("float32"))
    forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
    return (lambda: forward(images).numpy()), model


def time_model(
    name: str,
    preset: str | None,
    size: tuple[int, int],
    *,
    batch: int,
    repeats: int,
    xla: bool,
    fold_bn: bool,
    precision: str = "fp32",
) -> dict:
    from models.flops import count_flops

    run_once, model = build_forward(
        name, preset, size, batch=batch, xla=xla, fold_bn=fold_bn, precision=precision
    )
    flops = count_flops(model, *size)
    best, median = best_seconds(run_once, repeats)
    return {
        "params": model.count_params(),
        "gflop": flops / 1e9,
        "best_s": best,
        "median_s": median,
        "images_per_s": batch / best,
        "gflops": flops * batch / best / 1e9,
    }


def compare_case(
    name: str,
    preset: str | None,
    size: tuple[int, int],
    *,
    batch: int,
    repeats: int,
    xla: bool,
    fold_bn: bool,
    precisions: tuple[str, ...],
    peer: PeerProcess | None,
) -> tuple[dict[str, list[Timing]], dict[str, str]]:
    """The passes of ours in each precision and of the peer's, passes interleaved (speed does
    not depend on the weights: each model keeps its random initialisation)."""
    runners: dict[str, Callable[[], float]] = {}
    for precision in precisions:
        run_once, _ = build_forward(
            name, preset, size, batch=batch, xla=xla, fold_bn=fold_bn, precision=precision
        )
        runners[f"ours {precision}"] = timed(run_once)
        if peer is not None:
            runners[f"mmseg {precision}"] = lambda p=precision: peer.timing(p)
    return interleaved_passes(runners, repeats)


def _speedup_line(times: dict[str, list[Timing]], fast: str, slow: str, target: float | None) -> str:
    """`slow`'s time over `fast`'s: in CPU time, the median over the interleaved pairs of passes (what the
    target is judged on: it holds on a shared machine), and in wall time, best over best."""
    if fast not in times or slow not in times:
        return ""
    pairs = [s.cpu / f.cpu for s, f in zip(times[slow], times[fast], strict=False)]
    cpu_ratio = median(pairs)
    wall_ratio = min(t.wall for t in times[slow]) / min(t.wall for t in times[fast])
    met = "met" if target is not None and cpu_ratio >= target else "NOT met"
    verdict = "" if target is None else f" (target >= {target:g}x: {met})"
    return (
        f"  speed {fast} / {slow}: {cpu_ratio:.2f}x in CPU time (median of {len(pairs)} interleaved pairs), "
        f"{wall_ratio:.2f}x in wall time (best over best){verdict}"
    )


def run(args: argparse.Namespace) -> int:
    from bench.common.tensorflow_import import import_tensorflow

    for option, value in (
        ("--batch", args.batch),
        ("--repeats", args.repeats),
        ("--matmul-size", args.matmul_size),
    ):
        if value < 1:
            raise UserError(f"{option} {value} must be at least 1")
    from bench.perf.model import modes as model_latency

    model_latency.parse_modes(args.modes)  # bad options fail before TensorFlow starts
    if args.warmup < 0:
        raise UserError(f"--warmup {args.warmup} must be 0 or more")
    if args.csv:
        from bench.common.atomic import check_writable

        check_writable(args.csv, "--csv file", folder=False)  # before the timing, not after it
    if args.checkpoint:
        if args.cases:
            raise UserError("--checkpoint times that checkpoint: give no MODEL@HxW cases with it")
        from bench.perf.model import checkpoint

        return checkpoint.run(args)
    cases = [parse_case(text) for text in (args.cases or DEFAULT_CASES)]
    train_step = parse_train_step(args.train_step) if args.train_step else None
    tf = import_tensorflow(training=train_step is not None)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, not {args.threads}")
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)  # before TensorFlow runs an op
    if args.peer and any((name, preset) != ("pspnet", None) for name, preset, _ in cases):
        raise UserError(
            "--peer mmseg times mmsegmentation's PSPNet-R50-D8: give cases of the default pspnet only, "
            "e.g. pspnet@512x1024"
        )
    from bench.common.device import environment

    env = environment()
    print(
        f"{env['device']}, TensorFlow {env['tensorflow']}, intra-op threads {env['threads']}, batch "
        f"{args.batch}, xla {args.xla}, fold-bn {args.fold_bn}, precision {args.precision}; {load_note()}",
        flush=True,
    )
    peaks = [matmul_gflops(args.matmul_size)]
    print(f"float32 matmul {args.matmul_size}^3: {peaks[0]:.1f} GFLOP/s", flush=True)
    if args.peer or (args.precision != "fp32" and args.modes is None):
        return _run_comparisons(args, cases, int(env["threads"]), peaks)
    if args.batch == 1:
        return model_latency.run_field(args, cases, env, peaks, matmul_gflops)
    for name, preset, size in cases:
        label = f"{name}{':' + preset if preset else ''}@{size[0]}x{size[1]}"
        r = time_model(
            name, preset, size, batch=args.batch, repeats=args.repeats, xla=args.xla, fold_bn=args.fold_bn
        )
        # the matmul again right after: on a shared machine the rate drifts; compare with the best seen
        peaks.append(matmul_gflops(args.matmul_size))
        peak = max(peaks)
        print(
            f"{label:<24s} {r['params'] / 1e6:7.2f}M params {r['gflop']:8.2f} GFLOP/image  "
            f"{r['images_per_s']:8.3f} images/s ({r['best_s'] * 1000:.0f} ms best, "
            f"{r['median_s'] * 1000:.0f} ms median)  {r['gflops']:6.1f} GFLOP/s = "
            f"{100 * r['gflops'] / peak:5.1f}% of the matmul's {peak:.1f} GFLOP/s "
            f"(matmul after it: {peaks[-1]:.1f})",
            flush=True,
        )
        if train_step:
            batch, height, width = train_step
            seconds = time_train_step(name, preset, batch, (height, width), args.repeats)
            print(
                f"{'':<24s} training step, batch {batch} of {height}x{width}: {seconds * 1000:.0f} ms "
                f"({3 * batch * r['gflop'] * height * width / size[0] / size[1] / seconds:.1f} "
                f"GFLOP/s counting backward as 2x forward)",
                flush=True,
            )
    return 0


def _run_comparisons(args: argparse.Namespace, cases, threads: int, peaks: list[float]) -> int:
    """bf16 against fp32 and/or ours against the peer, case by case, with the ratios and their targets."""
    from models import registry
    from models.flops import count_flops

    precisions = ("fp32", "bf16") if args.precision == "bf16" else ("fp32",)
    if "bf16" in precisions:
        bf16_peak = matmul_gflops(args.matmul_size, precision="bf16")
        print(f"bfloat16 matmul {args.matmul_size}^3: {bf16_peak:.1f} GFLOP/s", flush=True)
    for name, preset, size in cases:
        label = f"{name}{':' + preset if preset else ''}@{size[0]}x{size[1]}"
        reference = registry.build(name, preset=preset)
        gflop = count_flops(reference, *size) / 1e9
        print(f"{label}: {reference.count_params() / 1e6:.2f}M params, {gflop:.2f} GFLOP/image", flush=True)
        del reference
        peer = PeerProcess(args.peer_python, size, args.batch, threads) if args.peer else None
        try:
            if peer is not None:
                f = peer.facts
                print(
                    f"  peer: mmsegmentation {f['mmseg']} PSPNet-R50-D8 on torch {f['torch']}, "
                    f"{f['threads']} threads, {f['params_without_aux'] / 1e6:.2f}M params without the aux "
                    f"head (ours {registry.build(name, preset=preset).count_params() / 1e6:.2f}M)",
                    flush=True,
                )
            timings, failed = compare_case(
                name,
                preset,
                size,
                batch=args.batch,
                repeats=args.repeats,
                xla=args.xla,
                fold_bn=args.fold_bn,
                precisions=precisions,
                peer=peer,
            )
        finally:
            if peer is not None:
                peer.close()
        for runner, times in timings.items():
            best, wall, cpu = (
                min(t.wall for t in times),
                median([t.wall for t in times]),
                median([t.cpu for t in times]),
            )
            print(
                f"  {runner:<11s} wall {best * 1000:6.0f} ms best ({wall * 1000:.0f} median), "
                f"CPU {cpu:.2f} s median over {len(times)} interleaved passes; at best "
                f"{args.batch / best:.3f} images/s, {gflop * args.batch / best:.1f} GFLOP/s",
                flush=True,
            )
        for runner, why in failed.items():
            print(f"  {runner:<11s} does not run here: {why}", flush=True)
        targeted = (name, preset) == ("pspnet", None)  # the targets are set for PSPNet-R50-D8
        lines = [
            _speedup_line(timings, "ours bf16", "ours fp32", BF16_SPEEDUP_TARGET if targeted else None),
            _speedup_line(timings, "ours fp32", "mmseg fp32", None),
            _speedup_line(timings, "ours bf16", "mmseg fp32", PEER_SPEEDUP_TARGET),
            _speedup_line(timings, "ours bf16", "mmseg bf16", None),
            _speedup_line(timings, "mmseg bf16", "mmseg fp32", None),
        ]
        print("\n".join(line for line in lines if line), flush=True)
    print(f"{load_note()} at the end: other processes share the cores; compare ratios", flush=True)
    return 0
