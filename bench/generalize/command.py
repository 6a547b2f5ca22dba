"""`python -m bench generalize CHECKPOINT --datasets cityscapes=ROOT,acdc=ROOT,...`: a Cityscapes-trained
model on the datasets that share its 19 classes, one row per dataset and condition.

OUT (default `results/runs/generalize-{digest}`, named by the sweep's manifest, so the same command
resumes) holds the manifest, one sums file per finished unit, `generalize.md`, `generalize.csv` and
`generalize.png`; `--readme README.md` also regenerates the README's generalization section.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.arguments import add_inference_arguments
    from data.layouts import FORMATS

    parser.add_argument("checkpoint", help=".keras checkpoint, training folder or published .pth")
    parser.add_argument(
        "--datasets",
        required=True,
        help=f"comma-separated NAME=ROOT, NAME one of {', '.join(FORMATS)} (any subset)",
    )
    parser.add_argument("--split", default="val", help="split of each dataset (default val)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N frames of each condition")
    parser.add_argument("--out", default=None, help="sweep folder (default results/runs/generalize-{digest})")
    parser.add_argument("--readme", default=None, help="README whose generalization section to regenerate")
    add_inference_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from bench.arguments import inference_settings
    from bench.common import atomic
    from bench.common.paths import RUNS_DIR
    from bench.common.progress import progress_bar
    from bench.generalize import report, sweep
    from bench.robustness.replicas import ReplicaModel

    datasets = sweep.parse_datasets(args.datasets)
    settings = inference_settings(args)
    units = sweep.plan(datasets, args.split, args.limit)
    if args.readme is not None:
        report.read_readme(args.readme)  # markers checked before any work
    model = ReplicaModel(args.checkpoint, settings)
    manifest = sweep.manifest(model.sha256 or "", units, dataclasses.asdict(settings))
    out = args.out if args.out is not None else RUNS_DIR / f"generalize-{sweep.digest(manifest)[:12]}"
    folder = sweep.Folder(out, manifest).open()
    total = sum(len(f) for f in units.values())
    print(f"sweep folder {folder.out}: {len(units)} units, {total} frames", flush=True)

    def predict(rgb):
        return model.predict([rgb])[0][0]

    bar = progress_bar(total, desc="generalize", unit="img", enabled=not args.no_progress)
    try:
        computed = sweep.run(predict, units, folder, bar)
    finally:
        bar.close()
    table = report.rows({u: folder.load(u) for u in units})
    name = model.metadata.get("model") or str(args.checkpoint)
    text = report.markdown(table, f"Generalization of {name} ({', '.join(datasets)})")
    atomic_out = folder.out
    atomic.write_text(atomic_out / "generalize.md", text)
    report.write_csv(table, atomic_out / "generalize.csv")
    report.plot(table, atomic_out / "generalize.png")
    print(text, end="")
    print(
        f"{computed} unit(s) computed, {len(units) - computed} already there; "
        f"wrote {out}/generalize.md, .csv, .png"
    )
    if args.readme is not None:
        section = (
            text
            + f"\n![mIoU per dataset and condition]({_link(atomic_out / 'generalize.png', args.readme)})\n"
        )
        changed = report.update_readme(args.readme, section)
        print(f"{args.readme}: generalization section {'regenerated' if changed else 'unchanged'}")
    return 0


def _link(target, readme) -> str:
    import os

    return os.path.relpath(target, os.path.dirname(os.path.abspath(readme)))
