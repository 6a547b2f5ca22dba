"""`python -m bench perf precision`: what bf16 costs in accuracy and gains in speed, on a real checkpoint.

The checkpoint is loaded twice (float32, and bfloat16 compute with the same float32 weights, both with
BatchNorm folded as prediction does); every frame of the split goes through both, pass for pass in turn.
Printed: the arg-max agreement of the two over all pixels and over the pixels the evaluation counts, both
runs' mIoU (scored from the arrays, as `bench predict --evaluate` does) and their difference, the largest
per-class IoU difference, and the speed ratio. Targets for PSPNet-R50-D8 on an AVX512-BF16 CPU: agreement
at least 99.5%, speed at least 1.8x (`bench perf model --precision bf16` times the full-size network).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

AGREEMENT_TARGET = 0.995


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help=".keras checkpoint or training folder")
    parser.add_argument("--dataset", default=None, help="Cityscapes root (default: $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="split with ground truth (default val)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N frames")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run fp32 on the input rounded to bfloat16: how much a perturbation of bf16's size alone "
        "changes this model's arg-max (random-weight models flip many pixels there: the test says little)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from bench.common.device import environment
    from bench.common.progress import progress_bar
    from bench.common.tensorflow_import import import_tensorflow
    from bench.evaluation.png import read_png
    from bench.evaluation.scoring import VALID_IDS
    from bench.evaluation.streaming import StreamingEvaluator
    from bench.perf.timing import Timing, load_note, measure, median
    from bench.sources.opener import open_checkpoint
    from data.cityscapes import list_samples
    from data.errors import UserError
    from data.normalization import InputSpec
    from data.pipeline import eval_dataset

    tf = import_tensorflow()
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit} must be at least 1")
    samples = list_samples(args.dataset, args.split, require_images=True)[: args.limit]
    forwards, metadata = {}, None
    for precision in ("fp32", "bf16"):
        opened = open_checkpoint(args.checkpoint, fold_bn=True, precision=precision)
        model, metadata = opened.keras, opened.metadata
        forwards[precision] = tf.function(lambda x, m=model: tf.cast(m(x, training=False), tf.float32))
    env = environment()
    print(
        f"{metadata['checkpoint']} ({metadata.get('model')}, preset {metadata.get('preset')}): "
        f"{len(samples)} frames of {args.split}; {env['device']}, {env['threads']} threads, "
        f"TensorFlow {env['tensorflow']}",
        flush=True,
    )
    evaluated = np.zeros(256, bool)  # label ids whose GT pixels the evaluation counts
    evaluated[VALID_IDS] = True
    counts = {"all": [0, 0], "evaluated": [0, 0], "baseline": [0, 0]}  # [agreeing pixels, pixels]
    seconds: dict[str, list[Timing]] = {"fp32": [], "bf16": []}
    evaluators = {p: StreamingEvaluator() for p in forwards}
    frames = eval_dataset(samples, with_labels=False, input_spec=InputSpec.from_metadata(metadata))
    try:
        first = True
        bar = progress_bar(len(samples), desc="fp32 and bf16", unit="img", enabled=not args.no_progress)
        for sample, image in zip(samples, frames, strict=True):
            train_ids = {}
            for precision, forward in forwards.items():
                if first:
                    forward(image)  # warm-up: tracing is not inference time
                timing, logits = measure(lambda f=forward, x=image: f(x).numpy()[0])
                train_ids[precision] = np.argmax(logits, axis=-1).astype(np.uint8)
                seconds[precision].append(timing)
                evaluators[precision].process(sample, train_ids[precision])
            first = False
            same = train_ids["fp32"] == train_ids["bf16"]
            counted = evaluated[read_png(sample.label_ids, "ground truth")]
            counts["all"][0] += int(same.sum())
            counts["all"][1] += same.size
            counts["evaluated"][0] += int(same[counted].sum())
            counts["evaluated"][1] += int(counted.sum())
            if args.baseline:  # fp32 on an input perturbed by bfloat16 rounding alone
                rounded = tf.cast(tf.cast(image, tf.bfloat16), tf.float32)
                perturbed = np.argmax(forwards["fp32"](rounded).numpy()[0], axis=-1)
                counts["baseline"][0] += int((perturbed == train_ids["fp32"]).sum())
                counts["baseline"][1] += same.size
            bar.update(1)
        bar.close()
        results = {p: e.evaluate() for p, e in evaluators.items()}
    finally:
        for evaluator in evaluators.values():
            evaluator.close()

    agreement = {k: a / n if n else math.nan for k, (a, n) in counts.items()}
    miou = {p: 100 * r.miou for p, r in results.items()}
    class_delta = {
        name: 100 * (results["bf16"].class_iou[name] - value)
        for name, value in results["fp32"].class_iou.items()
        if not math.isnan(value)
    }
    worst = max(class_delta, key=lambda n: abs(class_delta[n])) if class_delta else None
    best = {p: min(t.wall for t in times) for p, times in seconds.items()}
    (same_all, n_all), n_eval = counts["all"], counts["evaluated"][1]
    verdict = "met" if agreement["all"] >= AGREEMENT_TARGET else "NOT met"
    print(
        f"arg-max agreement bf16 vs fp32: {100 * agreement['all']:.3f}% of all pixels ({n_all - same_all} "
        f"of {n_all} differ), {100 * agreement['evaluated']:.3f}% of the {n_eval} evaluated pixels "
        f"(target >= {100 * AGREEMENT_TARGET:g}%: {verdict})"
    )
    if args.baseline:
        print(
            f"baseline: fp32 on the input rounded to bfloat16 agrees on {100 * agreement['baseline']:.3f}% "
            f"of the pixels with fp32 (a model that flips many pixels here is too sensitive for this test)"
        )
    delta = miou["bf16"] - miou["fp32"]
    print(
        f"mIoU fp32 {miou['fp32']:.3f}, bf16 {miou['bf16']:.3f}: difference {delta:+.3f} points"
        + (f"; largest per-class difference {class_delta[worst]:+.3f} ({worst})" if worst else "")
    )
    cpu_ratio = median([a.cpu / b.cpu for a, b in zip(seconds["fp32"], seconds["bf16"], strict=True)])
    wall_ratio = best["fp32"] / best["bf16"]
    print(
        f"per frame: fp32 {best['fp32'] * 1000:.0f} ms, bf16 {best['bf16'] * 1000:.0f} ms (wall, best): "
        f"speed bf16 / fp32 {cpu_ratio:.2f}x in CPU time (median over the frames), {wall_ratio:.2f}x in wall "
        f"time (best over best); {load_note()}"
    )
    return 0
