"""The checkpoint `bench run` uses when given none: the model's CPU preset trained once on the dataset, cached
under `checkpoints/` (resumed when a run was cut short, reused when complete)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.common.datasets import Dataset
from bench.common.paths import CHECKPOINT_ROOT
from bench.report.run_folder import slug
from bench.training.recipes import Recipe


def default_preset(model: str) -> str | None:
    """The model's "cpu" preset where it has one (plugins and small models train as they are)."""
    from models import registry

    return "cpu" if "cpu" in registry.get(model).presets else None


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

    seeded = f"-seed{seed}" if seed else ""  # seed 0 keeps the cache path it always had
    out = Path(root) / slug(f"{model}-{preset or 'default'}-{dataset.name}{seeded}")
    done = ckpt.list_checkpoints(out)
    if done and ckpt.read_metadata(done[-1]).get("steps") == recipe.steps:
        print(f"checkpoint: {done[-1]} (cached; delete {out} to retrain)")
        return done[-1]
    print(
        f"checkpoint: training {model} (preset {preset or 'none'}) for {recipe.steps} steps, batch "
        f"{recipe.batch}, crop {recipe.crop[0]}x{recipe.crop[1]} into {out}" + (" (resuming)" if done else "")
    )
    recipe = dataclasses.replace(recipe, model=model, preset=preset, seed=seed, val_every=0)
    return train(recipe, dataset.root, out, run=RunOptions(resume=bool(done), progress=progress))
