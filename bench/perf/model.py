"""`python -m bench perf model`: forward images/s of registry models and their GFLOP/s against a matmul.

The ratio to a large float32 matmul measured in the same process says how close the network runs to what
this machine's BLAS can do (target: at least 50% on CPU), independent of how loaded or fast the machine is.
Default cases (`DEFAULT_CASES`): the paper's pspnet (ResNet-50) at 512x1024, and the pspnet and fcn CPU
presets at the embedded dataset's resolution.
"""

from __future__ import annotations

import argparse
import time

from data.sizes import parse_dims, parse_size

DEFAULT_CASES = ("pspnet@512x1024", "pspnet:cpu@256x512", "fcn:cpu@256x512")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "cases",
        nargs="*",
        metavar="MODEL[:PRESET]@HxW",
        help=f"what to time (default: {' '.join(DEFAULT_CASES)})",
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


def parse_case(text: str) -> tuple[str, str | None, tuple[int, int]]:
    """ "pspnet:cpu@256x512" -> ("pspnet", "cpu", (256, 512)); a plugin "pkg.mod:func@HxW" has no preset."""
    from data.errors import UserError
    from models import registry

    model, _, size = text.partition("@")
    name, _, preset = model.partition(":")
    if name not in registry.available():
        name, preset = model, ""
    registry.resolve_options(name, preset or None)  # an unknown model or preset fails before any timing
    try:
        return name, preset or None, parse_size(size)
    except ValueError:
        raise UserError(
            f"perf model case '{text}' is not MODEL[:PRESET]@HxW, e.g. pspnet:cpu@256x512"
        ) from None


def parse_train_step(text: str) -> tuple[int, int, int]:
    from data.errors import UserError

    try:
        return parse_dims(text, 3, "8x256x256")
    except ValueError as exc:
        raise UserError(f"--train-step: {exc} (batch x height x width)") from None


def best_seconds(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall seconds of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[0], times[len(times) // 2]


def matmul_gflops(n: int, repeats: int = 3) -> float:
    """GFLOP/s of an n x n float32 matmul: the better of TensorFlow's and numpy's BLAS."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda: tf.linalg.matmul(ta, tb))
    tf_best, _ = best_seconds(lambda: matmul().numpy(), repeats)
    np_best, _ = best_seconds(lambda: a @ b, repeats)
    return 2.0 * n**3 / min(tf_best, np_best) / 1e9


def time_train_step(name: str, preset: str | None, batch: int, size: tuple[int, int], repeats: int) -> float:
    """Best seconds of one step of the trainer's own train step (forward, backward with the auxiliary
    loss, SGD update with weight decay): what `bench train` runs, not a copy of it."""
    import tensorflow as tf

    from bench.engine.train import make_optimizer, make_train_step
    from models import registry

    model = registry.build(name, preset=preset, aux_head=True)
    step = make_train_step(model, make_optimizer(0.01, steps=1000))
    images = tf.random.normal([batch, *size, 3])
    labels = tf.random.uniform([batch, *size], 0, 19, tf.int32)
    best, _ = best_seconds(lambda: step(images, labels)["loss"].numpy(), repeats)
    return best


def time_model(
    name: str,
    preset: str | None,
    size: tuple[int, int],
    *,
    batch: int,
    repeats: int,
    xla: bool,
    fold_bn: bool,
) -> dict:
    import numpy as np
    import tensorflow as tf

    from models import registry
    from models.flops import count_flops

    model = registry.build(name, preset=preset)
    if fold_bn:
        from models.inference import fold_batchnorm

        model = fold_batchnorm(model)
    flops = count_flops(model, *size)
    images = tf.constant(np.random.default_rng(0).normal(size=(batch, *size, 3)).astype("float32"))
    forward = tf.function(lambda x: model(x, training=False), jit_compile=xla)
    best, median = best_seconds(lambda: forward(images).numpy(), repeats)
    return {
        "params": model.count_params(),
        "gflop": flops / 1e9,
        "best_s": best,
        "median_s": median,
        "images_per_s": batch / best,
        "gflops": flops * batch / best / 1e9,
    }


def run(args: argparse.Namespace) -> int:
    from bench.engine.tensorflow_import import import_tensorflow
    from data.errors import UserError

    for option, value in (
        ("--batch", args.batch),
        ("--repeats", args.repeats),
        ("--matmul-size", args.matmul_size),
    ):
        if value < 1:
            raise UserError(f"{option} {value} must be at least 1")
    tf = import_tensorflow()
    cases = [parse_case(text) for text in (args.cases or DEFAULT_CASES)]
    train_step = parse_train_step(args.train_step) if args.train_step else None
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "auto"
    print(
        f"TensorFlow {tf.__version__}, intra-op threads {threads}, batch {args.batch}, xla {args.xla}, "
        f"fold-bn {args.fold_bn}",
        flush=True,
    )
    peaks = [matmul_gflops(args.matmul_size)]
    print(f"float32 matmul {args.matmul_size}^3: {peaks[0]:.1f} GFLOP/s", flush=True)
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
