"""The checkpoint `bench run` uses when given none: the model's CPU preset trained once on the dataset, cached
under `checkpoints/` (resumed when a run was cut short, reused when complete)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bench.common.datasets import Dataset
from bench.common.paths import CHECKPOINT_ROOT
from bench.report.run_folder import slug
from bench.training.recipes import Recipe, changed_settings


def default_preset(model: str) -> str | None:
    """The model's "cpu" preset where it has one (plugins and small models train as they are)."""
    from models import registry

    return "cpu" if "cpu" in registry.get(model).presets else None


def cache_folder(
    model: str, dataset_name: str, preset: str | None, seed: int, root: Path = CHECKPOINT_ROOT
) -> Path:
    """Where the default checkpoint of `model` on that dataset is cached."""
    seeded = f"-seed{seed}" if seed else ""  # seed 0 keeps the cache path it always had
    return Path(root) / slug(f"{model}-{preset or 'default'}-{dataset_name}{seeded}")


def plan_line(
    model: str,
    dataset: str | None,
    checkpoint: str | None,
    split: str,
    *,
    seed: int = 0,
    steps: int | None = None,
    preset: str | None = None,
    root: Path = CHECKPOINT_ROOT,
) -> str:
    """What `bench run` is about to do and about how long it takes, printed before any of it (no TensorFlow,
    nothing written): a first run trains for minutes, later ones take seconds."""
    import os

    from bench.common.paths import SYNTHETIC_ROOT
    from bench.training.recipes import default_recipe
    from data.synthetic import read_manifest

    dataset = dataset or os.environ.get("CITYSCAPES_DATASET") or None
    root_path = Path(dataset).expanduser() if dataset else SYNTHETIC_ROOT
    manifest = read_manifest(root_path)
    parts = [f"{model} on {dataset or 'the embedded synthetic set'}"]
    minutes: float | None = 0.5
    if not dataset and manifest is None:
        parts.append("generating the synthetic set first (about 30 s)")
        minutes += 0.5
    if checkpoint:
        parts.append(f"checkpoint {checkpoint}")
    else:
        preset = preset if preset is not None else default_preset(model)
        recipe = default_recipe(model, "synthetic" if manifest is not None or not dataset else "real")
        name = (
            f"synthetic-v{manifest['version']}-{manifest['size'][0]}x{manifest['size'][1]}"
            if manifest
            else "cityscapes"
        )
        cached = manifest is not None or dataset
        if cached and list(cache_folder(model, name, preset, seed, root).glob("ckpt-*.keras")):
            parts.append("the cached default checkpoint (trained once before)")
        else:
            n = steps or recipe.steps
            took = recipe.cpu_minutes * n / recipe.steps if recipe.cpu_minutes else None
            about = f"about {took:.1f} min on a 2-core CPU" if took else "time not measured here"
            parts.append(
                f"training the {preset or 'default'} preset for {n} steps once ({about}; cached after)"
            )
            minutes = minutes + took if took else None
    if minutes is None:
        when = "how long depends on the CPU (the progress bar shows the ETA)"
    else:
        when = f"about {minutes:.0f} min in all" if minutes >= 1.5 else "about a minute in all"
    return f"bench run: {', '.join(parts)}, then predicting and scoring the {split} split: {when}"


def ensure_checkpoint(
    model: str,
    dataset: Dataset,
    *,
    preset: str | None,
    recipe: Recipe,
    seed: int,
    root: Path = CHECKPOINT_ROOT,
    progress: bool = True,
) -> Path:
    """The cached default checkpoint of `model` on `dataset` (its `root` and `name`),
    trained (or resumed) when missing."""
    from bench.sources import keras_checkpoint as ckpt
    from bench.training.train import RunOptions, train

    out = cache_folder(model, dataset.name, preset, seed, root)
    done = ckpt.list_checkpoints(out)
    if done:
        meta = ckpt.read_metadata(done[-1])
        changed = changed_settings(meta, recipe)
        if changed or meta.get("recipe") != (recipe.name or None):
            # trained with another recipe (an older version of this code): kept aside, never resumed from
            aside = out.with_name(f"{out.name}-previous")
            shutil.rmtree(aside, ignore_errors=True)
            out.rename(aside)
            print(
                f"checkpoint: {out} was trained with other settings ({', '.join(changed) or 'recipe'}): "
                f"moved to {aside}, training anew"
            )
            done = []
        elif meta.get("steps") == recipe.steps:
            print(f"checkpoint: {done[-1]} (cached; delete {out} to retrain)")
            return done[-1]
    print(
        f"checkpoint: training {model} (preset {preset or 'none'}) for {recipe.steps} steps, batch "
        f"{recipe.batch}, crop {recipe.crop[0]}x{recipe.crop[1]} into {out}"
        + (" (resuming)" if done else "")
        + (f"; about {recipe.cpu_minutes:g} min on a 2-core CPU" if recipe.cpu_minutes and not done else "")
    )
    recipe = dataclasses.replace(recipe, model=model, preset=preset, seed=seed, val_every=0)
    hint = "run the same command again to continue from it (no flag needed: it resumes by itself)"
    return train(
        recipe, dataset.root, out, run=RunOptions(resume=bool(done), progress=progress, resume_hint=hint)
    )
